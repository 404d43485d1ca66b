"""The spend explorer's query, as people fill it in on the portal."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms

from usage.labels import MAX_KEY_LENGTH, LabelError, check_key
from usage.spend import GROUPINGS, INTERVALS, range_error


def month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


class SpendForm(forms.Form):
    """From and To are days, both included (To's day after is the half-open end the
    reads take); empty means this month, to its last day (the days still to come show
    the forecast)."""

    start = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}),
                         help_text="Included.")
    interval = forms.ChoiceField(label="By", required=False, initial="day",
                                 choices=[(i, i.capitalize()) for i in INTERVALS])
    group_by = forms.ChoiceField(label="Group by", required=False, initial="product",
                                 choices=[(k, g.label) for k, g in GROUPINGS.items()])
    label_key = forms.CharField(label="Label", required=False, max_length=MAX_KEY_LENGTH,
                                help_text="With Group by Label: the label whose values group the spend.")

    def __init__(self, *args, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self):
        data = super().clean()
        start = data.get("start") or (self.today.replace(day=1) if "start" not in self.errors else None)
        to = data.get("to") or (month_end(self.today) if "to" not in self.errors else None)
        data["interval"] = data.get("interval") or "day"
        data["group_by"] = data.get("group_by") or "product"
        if data["group_by"] == "label":
            try:
                check_key(data.get("label_key"))
            except LabelError as exc:
                self.add_error("label_key", f"Grouping by label: {exc}")
        else:
            data["label_key"] = ""
        if start is None or to is None:
            return data
        if to == date.max:  # its day after, the reads' half-open end, is no date
            self.add_error("to", f"Enter a date before {date.max:%Y-%m-%d}.")
            return data
        if to < start:
            self.add_error("to", "To is before From: pick a day on or after it.")
            return data
        data["start"], data["to"], data["end"] = start, to, to + timedelta(days=1)
        problem = range_error(start, data["end"], today=self.today)
        if problem:
            name, message = problem
            self.add_error("to" if name == "end" else name, message)
        return data
