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


class AdjustmentForm(forms.Form):
    """Console: a staff adjustment or promotional grant, always with a reason."""

    amount = forms.DecimalField(max_digits=20, decimal_places=6,
                                help_text="Positive credits the customer, negative debits paid credit.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    promotional = forms.BooleanField(required=False, help_text="Grant as promotional credit (positive amounts only).")
    expires_at = forms.DateTimeField(required=False, help_text="Promotional credit: when what is left expires (UTC).")

    def clean(self):
        data = super().clean()
        if data.get("promotional"):
            if not data.get("expires_at"):
                self.add_error("expires_at", "Promotional credit needs an expiry.")
            if data.get("amount") is not None and data["amount"] <= 0:
                self.add_error("amount", "Promotional credit must be positive.")
        return data
