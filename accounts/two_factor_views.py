"""Pages of two-factor sign-in: the code step after the password, enrolment (QR code),
recovery codes (shown once), turning it off, and an owner's requirement. Views parse,
call one service in accounts.two_factor, and render."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import two_factor
from accounts.models import RecoveryCodeDevice
from accounts.portal import portal_view
from core.errors import DomainError

NEW_CODES_SESSION_KEY = "new_recovery_codes"


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code", max_length=40, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "text",
                                      "autocapitalize": "off", "spellcheck": "false"}),
    )


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': next_url})}"


def _next(request, default: str | None = None) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return wanted
    return reverse(default or ("admin:index" if request.user.is_staff else "portal:dashboard"))


def _wrong_code(wait: int) -> str:
    return f"Too many wrong codes. Try again in {wait} second{'s' if wait != 1 else ''}."


@login_required
def verify(request):
    """The second step of signing in: a code from the app, or a recovery code."""
    if two_factor.pending_step(request) != two_factor.VERIFY:
        return redirect(_next(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device, wait = two_factor.two_factor_verify(request=request, code=form.cleaned_data["code"])
        if device is not None:
            if isinstance(device, RecoveryCodeDevice):
                left = two_factor.recovery_codes_left(request.user)
                messages.warning(request, f"You used a recovery code; {left} left. Make new ones under Settings "
                                          "if you are running low.")
            return redirect(_next(request))
        form.add_error("code", _wrong_code(wait) if wait
                       else "That code is not right. Codes from the app change every 30 seconds.")
    return render(request, "accounts/two_factor_verify.html", {"form": form, "next": _next(request)})


@login_required
def enrol(request):
    """Set up an authenticator app. A person who already has one must pass it first (the
    middleware sends them to the code step); a second app is not enrolled over the first."""
    step = two_factor.pending_step(request)
    if step == two_factor.VERIFY:
        return redirect(_with_next("two_factor_verify", _next(request)))
    if two_factor.has_two_factor(request.user):
        messages.info(request, "Two-factor sign-in is already on.")
        return redirect(_next(request))
    device = two_factor.enrolment_device(user=request.user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wait = two_factor.throttled_for([device])
        codes = None if wait else two_factor.two_factor_enrol(request=request, device=device,
                                                              code=form.cleaned_data["code"])
        if codes is not None:
            request.session[NEW_CODES_SESSION_KEY] = codes
            return redirect(_with_next("two_factor_recovery_codes", _next(request)))
        form.add_error("code", _wrong_code(wait) if wait else "That code is not right. Type the six digits "
                                                               "the app shows now.")
    return render(request, "accounts/two_factor_enrol.html", {
        "form": form, "next": _next(request), "qr_svg": two_factor.qr_code_svg(device),
        "secret": two_factor.secret_for_people(device), "required_by": two_factor.required_by(request.user),
    })


@login_required
def recovery_codes(request):
    """New codes are shown once, on the page after they are made; POST makes new ones.
    Not open to a session owing its code (the middleware sends it to the step first)."""
    if not two_factor.has_two_factor(request.user):
        return redirect("two_factor_enrol")
    if request.method == "POST":
        request.session[NEW_CODES_SESSION_KEY] = two_factor.recovery_codes_regenerate(user=request.user)
        messages.success(request, "New recovery codes made; the old ones no longer work.")
        return redirect(_with_next("two_factor_recovery_codes", _next(request)))
    codes = request.session.pop(NEW_CODES_SESSION_KEY, None)
    return render(request, "accounts/two_factor_recovery_codes.html", {
        "codes": codes, "left": two_factor.recovery_codes_left(request.user), "next": _next(request),
    })


@login_required
@require_POST
def disable(request):
    try:
        two_factor.two_factor_disable(request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Two-factor sign-in is off. You sign in with your password alone.")
    return redirect(_next(request, "portal:settings"))


@portal_view("account:read")
@require_POST
def requirement(request):
    required = request.POST.get("require_two_factor") == "on"
    try:
        two_factor.organization_require_two_factor(
            organization=request.membership.organization, required=required, actor=request.user,
            actor_role=request.membership.role)
    except DomainError as exc:
        if exc.status_code == 403:
            raise PermissionDenied(exc.message)
        messages.error(request, exc.message)
    else:
        messages.success(request, "Every member now signs in with two-factor." if required
                         else "Members may sign in with their password alone.")
    return redirect("portal:settings")
