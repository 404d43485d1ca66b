from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.scopes import Role


def _percent_list(value: str) -> list[int]:
    items = [v.strip().rstrip("%") for v in (value or "").replace(";", ",").split(",") if v.strip()]
    try:
        return [int(v) for v in items]
    except ValueError:
        raise ValidationError("Enter whole percentages separated by commas, e.g. 50, 80, 100.") from None


class BudgetForm(forms.Form):
    name = forms.CharField(max_length=100, initial="Monthly budget")
    amount = forms.DecimalField(label="Monthly amount", min_value=0, max_digits=17, decimal_places=6)
    actual_thresholds = forms.CharField(label="Alert at actual spend (%)", initial="50, 80, 100", required=False,
                                        help_text="Percentages of the amount, comma-separated.")
    forecast_thresholds = forms.CharField(label="Alert at forecast spend (%)", initial="100", required=False,
                                          help_text="Spend forecast to the month's end at the current rate.")
    recipient_roles = forms.MultipleChoiceField(label="Email members with role", choices=Role.choices,
                                                widget=forms.CheckboxSelectMultiple, required=False,
                                                initial=["owner", "billing"])
    recipient_emails = forms.CharField(label="And these addresses", required=False,
                                       help_text="Comma-separated.")
    cap_amount = forms.DecimalField(label="Hard cap", required=False, min_value=0, max_digits=17, decimal_places=6,
                                    help_text="Optional: at this month-to-date spend, running resources are "
                                              "hibernated until the cap is raised or the month turns.")

    def __init__(self, *args, projects=None, **kwargs):
        """`projects`: the organisation's projects, offered on a new budget (a budget's
        scope is set once); none: no chooser (editing, or no projects)."""
        super().__init__(*args, **kwargs)
        projects = list(projects or [])
        if projects:
            self.projects = {str(p.pk): p for p in projects}
            choices = [("", "Whole organisation"), *((k, f"Project: {p.name}") for k, p in self.projects.items())]
            self.fields = {"project": forms.ChoiceField(
                label="Covers", choices=choices, required=False,
                help_text="A project budget counts that project's spend only, and its hard cap hibernates "
                          "that project's resources only."), **self.fields}

    def clean_project(self):
        # A choice among this organisation's projects only: another's id is not a choice.
        return self.projects.get(self.cleaned_data.get("project") or "")

    def clean_actual_thresholds(self) -> list[int]:
        return _percent_list(self.cleaned_data["actual_thresholds"])

    def clean_forecast_thresholds(self) -> list[int]:
        return _percent_list(self.cleaned_data["forecast_thresholds"])

    def clean_recipient_emails(self) -> list[str]:
        emails = [e.strip() for e in (self.cleaned_data["recipient_emails"] or "").split(",") if e.strip()]
        for e in emails:
            try:
                validate_email(e)
            except ValidationError:
                raise ValidationError(f"{e} is not an email address.") from None
        return emails

    @classmethod
    def initial_for(cls, budget) -> dict:
        return {"name": budget.name, "amount": budget.amount,
                "actual_thresholds": ", ".join(str(t) for t in budget.actual_thresholds),
                "forecast_thresholds": ", ".join(str(t) for t in budget.forecast_thresholds),
                "recipient_roles": budget.recipient_roles, "recipient_emails": ", ".join(budget.recipient_emails),
                "cap_amount": budget.cap_amount}
