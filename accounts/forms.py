from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm

from accounts.backends import is_locked_out
from accounts.models import Organization
from accounts.scopes import ORGANIZATION_SCOPES, SCOPES, Role


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
                  "region": "Region or state", "country": "Country (ISO code)", "vat_id": "VAT id"}
        help_texts = {"country": "Two letters, e.g. DE or US.", "vat_id": "Shown on invoices; EU reverse charge needs it."}

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
