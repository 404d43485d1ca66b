import re
from decimal import Decimal
from typing import Any

from django import forms

from core.forms import DayRangeForm
from credits.models import EntryKind
from credits.services import topup_amount_problem, topup_minimum

# What a person may type as an amount: ASCII digits with an optional fraction, an
# optional minus (so "-5" is told the minimum, not "not a number"). Decimal() alone would
# take "1e3", full-width "１００" and Arabic-Indic digits.
_AMOUNT_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)
NOT_A_NUMBER = "Enter a number like 50 or 50.00."


class TopUpAmountField(forms.CharField):
    """A top-up amount in `currency`: the field's error says what is wrong (not a number,
    below the minimum, above the maximum, too many decimals), in the words the service
    uses (`credits.services.topup_amount_problem`)."""

    default_error_messages = {"required": "Enter an amount, e.g. 50.00."}

    def __init__(self, *, currency: str = "USD", **kwargs):
        self.currency = currency
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        if not _AMOUNT_RE.fullmatch(value):
            raise forms.ValidationError(NOT_A_NUMBER, code="invalid")
        amount = Decimal(value)
        problem = topup_amount_problem(amount, self.currency)
        if problem:
            raise forms.ValidationError(problem, code="amount")
        return amount

    def widget_attrs(self, widget):
        # Text with a decimal keypad: a number input would let the browser refuse what
        # it likes in words of its own (and take 0.01 against a $5 minimum).
        return {**super().widget_attrs(widget), "inputmode": "decimal", "autocomplete": "off"}


class TopUpForm(forms.Form):
    """The one top-up form (the Payments page, the Credits page and the top-up page all
    show it): an amount and how to pay. `pay_with` lists (value, label) pairs: the saved
    card, charged only after a confirmation naming it, and the hosted checkouts. Errors are
    the server's, on the field, so the browser adds no rules of its own."""

    use_required_attribute = False

    amount = TopUpAmountField(label="Amount")
    provider = forms.ChoiceField(widget=forms.RadioSelect, label="Pay with")
    # One key per form shown: a resubmitted confirmation charges once.
    request_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def __init__(self, *args, currency: str, pay_with: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"].currency = currency
        self.fields["amount"].label = f"Amount ({currency})"
        self.fields["provider"].choices = pay_with
        if pay_with and "provider" not in self.initial:
            self.initial["provider"] = pay_with[0][0]
        self.minimum = topup_minimum(currency)
        # The field's error and help are tied to it for screen readers.
        attrs = self.fields["amount"].widget.attrs
        attrs["aria-describedby"] = f"{self.auto_id % 'amount' if self.auto_id else 'amount'}_help"

    def full_clean(self):
        super().full_clean()
        if "amount" in self.errors:
            name = self.auto_id % "amount" if self.auto_id else "amount"
            self.fields["amount"].widget.attrs.update({"aria-invalid": "true",
                                                       "aria-describedby": f"{name}_error {name}_help"})


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
