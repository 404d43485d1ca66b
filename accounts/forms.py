from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import Organization
from accounts.scopes import ORGANIZATION_SCOPES, SCOPES, Role


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))


class BillingProfileForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = [
            "name", "legal_name", "billing_email", "address_line1", "address_line2", "city", "postal_code",
            "region", "country", "vat_id",
        ]
        labels = {"name": "Display name", "vat_id": "VAT id"}

    def clean_country(self):
        return (self.cleaned_data.get("country") or "").upper()


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
