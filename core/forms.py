"""Form pieces shared by the portal's lists and exports."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django import forms

DATE_FORMAT = "%Y-%m-%d"


class DayRangeForm(forms.Form):
    """From and to, whole days in UTC, both inclusive, as YYYY-MM-DD. A date that does not
    parse, or a range that ends before it starts, is an error on its field: never
    silently replaced by a default range."""

    start = forms.DateField(required=False, label="From", input_formats=[DATE_FORMAT],
                            error_messages={"invalid": "Enter a date as YYYY-MM-DD, e.g. 2026-03-01."},
                            widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", input_formats=[DATE_FORMAT],
                          error_messages={"invalid": "Enter a date as YYYY-MM-DD, e.g. 2026-03-31."},
                          widget=forms.DateInput(attrs={"type": "date"}))
    max_days: int | None = None

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if end == date.max:  # its day after, the range's half-open end, is no date
            self.add_error("end", f"Enter a date before {date.max:%Y-%m-%d}.")
        elif start and end:
            if end < start:
                self.add_error("end", "Must be on or after the start date.")
            elif self.max_days is not None and (end - start).days + 1 > self.max_days:
                self.add_error("end", f"At most {self.max_days} days at a time.")
        return data

    def utc_bounds(self) -> tuple[datetime | None, datetime | None]:
        """[start 00:00 UTC, the day after end 00:00 UTC): the range as instants."""
        start, end = self.cleaned_data.get("start"), self.cleaned_data.get("end")
        return (_midnight(start) if start else None, _midnight(end + timedelta(days=1)) if end else None)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def errors_text(form: forms.Form) -> str:
    """A form's errors as lines 'From: Enter a date…', for a 400 answered as plain text
    (a download link has no page to show them on)."""
    lines = []
    for name, errors in form.errors.items():
        label = form.fields[name].label or name if name in form.fields else ""
        lines.append(f"{label}: {' '.join(errors)}" if label else " ".join(errors))
    return "\n".join(lines)
