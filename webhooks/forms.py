from __future__ import annotations

from django import forms

from core.forms import DayRangeForm
from webhooks.catalogue import EVENT_TYPES


class EndpointForm(forms.Form):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https",
                         help_text="We POST each event here as JSON, signed (Standard Webhooks).")
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label="Events", choices=[(name, f"{name} — {t.description}") for name, t in EVENT_TYPES.items()],
        widget=forms.CheckboxSelectMultiple)


class ReplayForm(DayRangeForm):
    """Replay every delivery of messages emitted on these UTC days (both inclusive)."""
