from decimal import Decimal

from django import forms

from credits.models import EntryKind


class TopUpForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("1"), max_digits=12, decimal_places=2,
                                widget=forms.NumberInput(attrs={"step": "0.01", "placeholder": "100.00"}))
    request_key = forms.CharField(widget=forms.HiddenInput, max_length=64)


class AutoTopUpForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Top up automatically")
    threshold = forms.DecimalField(min_value=Decimal("0"), max_digits=12, decimal_places=2,
                                   help_text="When the balance falls below this…")
    amount = forms.DecimalField(min_value=Decimal("0"), max_digits=12, decimal_places=2,
                                help_text="…buy this much credit with your saved payment method.")
    monthly_cap = forms.DecimalField(required=False, min_value=Decimal("0"), max_digits=12, decimal_places=2,
                                     help_text="At most this much per calendar month (optional).")


class LedgerFilterForm(forms.Form):
    kind = forms.ChoiceField(required=False, choices=[("", "All kinds"), *EntryKind.choices])
