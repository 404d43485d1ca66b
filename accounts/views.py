"""Portal pages of the accounts app: sign-in, dashboard, organisation switcher, billing
profile, team and invitations, API keys. Views parse, call one service, and render."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts import services, two_factor
from accounts.forms import (
    AcceptInvitationForm,
    ApiKeyForm,
    BillingProfileForm,
    EmailAuthenticationForm,
    InviteForm,
    RoleForm,
    TimeZoneForm,
)
from accounts.models import ApiKey, Invitation, Membership
from accounts.portal import dashboard_cards, portal_view
from accounts.scopes import ROLE_DESCRIPTIONS, ROLE_SCOPES, Role
from accounts.tenancy import SESSION_KEY, membership_caller
from core.errors import DomainError


class LoginView(auth_views.LoginView):
    """The password step. Someone with two-factor on (or required of them) goes on to the
    code step (or enrolment), carrying where they were going."""

    template_name = "registration/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        """Staff who belong to no organisation came for the console: sending them to the
        portal's dashboard landed them on its 403 "no organisation" page."""
        user = self.request.user
        if user.is_staff and not Membership.objects.filter(user=user, organization__is_active=True).exists():
            return reverse("admin:index")
        return super().get_default_redirect_url()

    def get_success_url(self):
        url = super().get_success_url()
        step = two_factor.pending_step(self.request)
        if step is None:
            return url
        return f"{reverse('two_factor_verify' if step == two_factor.VERIFY else 'two_factor_enrol')}?" + \
            urlencode({"next": url})


def _can(request, scope: str) -> bool:
    return scope in ROLE_SCOPES[request.membership.role]


@portal_view()
def dashboard(request):
    org = request.membership.organization
    return render(request, "accounts/dashboard.html", {"cards": dashboard_cards(request, org)})


@portal_view()
@require_POST
def switch_organization(request):
    org_id = request.POST.get("organization")
    if not (org_id and org_id.isdigit()):
        raise PermissionDenied
    membership = get_object_or_404(Membership, user=request.user, organization_id=int(org_id),
                                   organization__is_active=True)
    request.session[SESSION_KEY] = membership.organization_id
    messages.success(request, f"Now working in {membership.organization.name}.")
    return redirect("portal:dashboard")


@portal_view("account:read")
def settings_page(request):
    org = request.membership.organization
    can_edit = _can(request, "account:write")
    form = BillingProfileForm(request.POST or None, instance=org)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        if form.is_valid():
            changed = {f: form.cleaned_data[f] for f in form.changed_data}
            try:
                services.organization_update(organization=org, actor=request.user, **changed)
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, "Billing profile saved.")
                return redirect("portal:settings")
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    return render(request, "accounts/settings.html", {
        "form": form, "can_edit": can_edit, "org": org,
        "time_zone_form": TimeZoneForm(initial={"time_zone": request.user.time_zone}, prefix="tz"),
        **two_factor.settings_summary(request)})


@portal_view()
@require_POST
def time_zone(request):
    """One's own display time zone: a personal setting, so any member may change it."""
    form = TimeZoneForm(request.POST, prefix="tz")
    if form.is_valid():
        services.user_set_time_zone(user=request.user, time_zone=form.cleaned_data["time_zone"])
        messages.success(request, f"Times are now shown in {form.cleaned_data['time_zone']}.")
        return redirect("portal:settings")
    org = request.membership.organization
    can_edit = _can(request, "account:write")
    profile = BillingProfileForm(instance=org)
    if not can_edit:
        for field in profile.fields.values():
            field.disabled = True
    return render(request, "accounts/settings.html", {
        "form": profile, "can_edit": can_edit, "org": org, "time_zone_form": form,
        **two_factor.settings_summary(request)}, status=400)


@portal_view("account:read")
def team(request):
    org = request.membership.organization
    can_manage = _can(request, "members:write")
    form = InviteForm(request.POST or None)
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied
        if form.is_valid():
            try:
                services.invitation_create(
                    organization=org, email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                    by=membership_caller(request.membership), accept_url_builder=request.build_absolute_uri,
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
                return redirect("portal:team")
    members = Membership.objects.filter(organization=org).select_related("user").order_by("user__email")
    invitations = [i for i in Invitation.objects.filter(organization=org, accepted_at=None, revoked_at=None)]
    return render(request, "accounts/team.html", {
        "members": members, "invitations": invitations, "form": form, "can_manage": can_manage,
        "roles": [(r.value, r.label, ROLE_DESCRIPTIONS[r]) for r in Role],
    })


@portal_view("members:write", model=Membership)
@require_POST
def member_role(request, pk: int):
    membership = get_object_or_404(Membership, pk=pk, organization=request.membership.organization)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return redirect("portal:team")
    try:
        services.membership_change_role(membership=membership, role=form.cleaned_data["role"],
                                        by=membership_caller(request.membership))
        messages.success(request, f"{membership.user.email} is now {form.cleaned_data['role']}.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("portal:team")


@portal_view("members:write", model=Membership)
@require_POST
def member_remove(request, pk: int):
    membership = get_object_or_404(Membership, pk=pk, organization=request.membership.organization)
    try:
        services.membership_remove(membership=membership, by=membership_caller(request.membership))
        messages.success(request, f"{membership.user.email} was removed.")
    except DomainError as exc:
        messages.error(request, exc.message)
    if membership.user_id == request.user.id:
        request.session.pop(SESSION_KEY, None)
        return redirect("portal:dashboard")
    return redirect("portal:team")


@portal_view("members:write", model=Invitation)
@require_POST
def invitation_revoke(request, pk: int):
    invitation = get_object_or_404(Invitation, pk=pk, organization=request.membership.organization)
    try:
        services.invitation_revoke(invitation=invitation, actor=request.user)
        messages.success(request, f"Invitation to {invitation.email} revoked.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("portal:team")


def accept_invitation(request, token: str):
    try:
        invitation = services.invitation_for_token(token)
    except DomainError:
        return render(request, "accounts/invitation_invalid.html", status=404)
    form = AcceptInvitationForm(request.POST or None)
    error = None
    if request.method == "POST":
        try:
            if request.user.is_authenticated:
                membership = services.invitation_accept(token=token, user=request.user)
            elif form.is_valid():
                validate_password(form.cleaned_data["password"])
                membership = services.invitation_accept(
                    token=token, password=form.cleaned_data["password"], full_name=form.cleaned_data["full_name"]
                )
                login(request, membership.user, backend="accounts.backends.ThrottledModelBackend")
            else:
                membership = None
        except ValidationError as exc:
            form.add_error("password", exc)
            membership = None
        except DomainError as exc:
            error = exc.message
            membership = None
        if membership is not None:
            request.session[SESSION_KEY] = membership.organization_id
            messages.success(request, f"Welcome to {membership.organization.name}.")
            return redirect("portal:dashboard")
    return render(request, "accounts/accept_invitation.html", {"invitation": invitation, "form": form, "error": error})


@portal_view("account:read")
def api_keys(request):
    org = request.membership.organization
    can_manage = _can(request, "api_keys:write")
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied
        if form.is_valid():
            try:
                key, full = services.api_key_create(
                    name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"], organization=org,
                    by=membership_caller(request.membership),
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                # Shown once, on the next page view, then gone from the session.
                request.session["new_api_key"] = {"id": key.pk, "key": full}
                return redirect("portal:api_keys")
    new_key = request.session.pop("new_api_key", None)
    keys = ApiKey.objects.filter(organization=org).select_related("created_by")
    return render(request, "accounts/api_keys.html", {"keys": keys, "form": form, "new_key": new_key,
                                                      "can_manage": can_manage})


@portal_view("api_keys:write", model=ApiKey)
@require_POST
def api_key_revoke(request, pk: int):
    key = get_object_or_404(ApiKey, pk=pk, organization=request.membership.organization)
    services.api_key_revoke(api_key=key, actor=request.user)
    messages.success(request, f"Key “{key.name}” revoked. Requests made with it now get 401.")
    return redirect("portal:api_keys")
