"""Portal forms. None of them has a card field: cards are entered on the provider's
hosted pages (or, in the sandbox, picked from labelled test cards). The top-up form is
credits' (`credits.forms.TopUpForm`): one form for every top-up."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms

from core.api.serializers import MONEY_PATTERN
from payments.models import Provider

_MONEY_RE = re.compile(MONEY_PATTERN, re.ASCII)


class MoneyFormField(forms.DecimalField):
    """The API's rule on a form: ASCII digits with an optional fraction. Django's own field
    strips spaces and lets Decimal() read Arabic-Indic digits and exponents."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if not isinstance(value, str) or not _MONEY_RE.fullmatch(value):
            raise forms.ValidationError('Enter an amount in digits, e.g. "100.00".', code="invalid")
        return super().to_python(value)

PROVIDER_LABELS = {Provider.STRIPE: "Card (Stripe)", Provider.PAYPAL: "PayPal",
                   Provider.SANDBOX: "Sandbox — no real money"}


def pay_with_choices(providers: list[str]) -> list[tuple[str, str]]:
    return [(p, PROVIDER_LABELS[p]) for p in providers]


def _provider_field(providers: list[str]) -> forms.ChoiceField:
    return forms.ChoiceField(choices=[(p, PROVIDER_LABELS[p]) for p in providers], initial=providers[0],
                             widget=forms.RadioSelect, label="Pay with")


class InvoicePaymentForm(forms.Form):
    amount = MoneyFormField(min_value=Decimal("0.01"), max_digits=14, decimal_places=2,
                            help_text="Pay all that is open, or part of it.")

    def __init__(self, *args, providers: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"] = _provider_field(providers)


class SandboxCardForm(forms.Form):
    card = forms.ChoiceField(
        choices=[("ok", "Sandbox Visa ····4242 (always succeeds)"),
                 ("declining", "Sandbox Visa ····0341 (always declines)")],
        widget=forms.RadioSelect, initial="ok", label="Test card",
    )
