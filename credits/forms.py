from decimal import Decimal
from typing import Any

from django import forms

from core.forms import DayRangeForm
from credits.models import EntryKind


class TopUpForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("1"), max_digits=12, decimal_places=2,
                                widget=forms.NumberInput(attrs={"step": "0.01", "placeholder": "100.00"}))
    request_key = forms.CharField(widget=forms.HiddenInput, max_length=64)


class AutoTopUpForm(forms.Form):
    """Bound with prefix "auto" (AUTO_TOPUP_PREFIX): the Credits page also holds the
    top-up form, whose `amount` would otherwise share the id `id_amount`."""

    enabled = forms.BooleanField(required=False, label="Top up automatically")
    threshold = forms.DecimalField(label="Below", min_value=Decimal("0"), max_digits=12, decimal_places=2,
                                   help_text="When the balance falls below this…")
    amount = forms.DecimalField(label="Buy", min_value=Decimal("0"), max_digits=12, decimal_places=2,
                                help_text="…buy this much credit with your saved payment method.")
    monthly_cap = forms.DecimalField(label="Monthly cap", required=False, min_value=Decimal("0"), max_digits=12,
                                     decimal_places=2, help_text="At most this much per calendar month (optional).")

    def __init__(self, *args: Any, currency: str, disabled: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", AUTO_TOPUP_PREFIX)
        super().__init__(*args, **kwargs)
        for name in ("threshold", "amount", "monthly_cap"):
            self.fields[name].label = f"{self.fields[name].label} ({currency})"
        if disabled:
            for field in self.fields.values():
                field.disabled = True


AUTO_TOPUP_PREFIX = "auto"


class LedgerFilterForm(DayRangeForm):
    """The ledger's filters, on the page and its CSV: a kind and days (UTC, inclusive)."""

    kind = forms.ChoiceField(required=False, choices=[("", "All kinds"), *EntryKind.choices])

    def filter(self, entries):
        """`entries` cut to the valid filters; call after is_valid()."""
        if self.cleaned_data.get("kind"):
            entries = entries.filter(kind=self.cleaned_data["kind"])
        since, until = self.utc_bounds()
        if since:
            entries = entries.filter(created_at__gte=since)
        if until:
            entries = entries.filter(created_at__lt=until)
        return entries
