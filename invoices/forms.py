"""Portal forms: the invoice list's search and filters."""

from __future__ import annotations

from django import forms

from invoices.models import InvoiceStatus

# Statuses a customer sees (drafts are never shown in the portal).
LISTED_STATUSES = [(value, label) for value, label in InvoiceStatus.choices if value != InvoiceStatus.DRAFT]


class InvoiceFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=60, label="Search",
                        help_text="An invoice number, or a period: 2026-03, March 2026, 2026.")
    status = forms.ChoiceField(required=False, choices=[("", "All statuses"), *LISTED_STATUSES])
    year = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Year")

    def __init__(self, *args, years: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["year"].choices = [("", "All years"), *((y, str(y)) for y in years)]
