from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django_countries import countries

from accounts.backends import is_locked_out
from accounts.models import Organization
from accounts.scopes import ORGANIZATION_SCOPES, SCOPES, Role
from accounts.tax_ids import is_country
from core.formatting import time_zone_choices


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))

    def clean_username(self):
        # Emails are stored lower-case (UserManager.create_user).
        return self.cleaned_data["username"].strip().lower()

    def clean(self):
        # Said plainly before the password is even checked, so a locked-out person with
        # the right password is not told it is wrong.
        if is_locked_out(self.cleaned_data.get("username"), self.request):
            minutes = max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)
            raise forms.ValidationError(
                f"Too many failed sign-ins. Try again in {minutes} minutes, or reset your password.", code="locked"
            )
        return super().clean()


class BillingProfileForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = [
            "name", "legal_name", "billing_email", "address_line1", "address_line2", "city", "postal_code",
            "region", "country", "vat_id",
        ]
        labels = {"name": "Display name", "address_line1": "Address", "address_line2": "Address (line 2)",
                  "region": "Region or state", "country": "Country", "vat_id": "VAT id"}
        help_texts = {"country": "Decides the tax rate on your invoices.",
                      "vat_id": "With its country prefix, e.g. NL004495445B01. Shown on invoices; "
                                "EU reverse charge needs it, and its check digits must add up."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.country if self.instance.pk else ""
        choices = [("", "—"), *countries]
        if stored and not is_country(stored):
            # A code stored before the list was enforced: shown as it is, refused on save.
            choices.insert(1, (stored, f"{stored} (not a country: choose one)"))
        self.fields["country"] = forms.ChoiceField(
            choices=choices, required=False, label=self.fields["country"].label,
            help_text=self.fields["country"].help_text, widget=forms.Select(attrs={"autocomplete": "country"}))

    def clean_country(self):
        return (self.cleaned_data.get("country") or "").upper()

    def clean_vat_id(self):
        return (self.cleaned_data.get("vat_id") or "").strip().upper()


class TimeZoneForm(forms.Form):
    """A person's display time zone (User.time_zone), on the Settings page."""

    time_zone = forms.ChoiceField(label="Time zone", choices=time_zone_choices,
                                  help_text="Times on these pages are shown in it. Invoices and other documents "
                                            "stay in UTC and say so.")


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where the key is used, e.g. 'terraform' or 'monitoring'.")
    scopes = forms.MultipleChoiceField(
        choices=[(s, f"{s} — {SCOPES[s]}") for s in sorted(ORGANIZATION_SCOPES)],
        widget=forms.CheckboxSelectMultiple,
        initial=["account:read", "usage:read", "billing:read"],
    )


class AcceptInvitationForm(forms.Form):
    full_name = forms.CharField(max_length=150, required=False)
    password = forms.CharField(widget=forms.PasswordInput, min_length=10)
