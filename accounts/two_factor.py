"""Two-factor sign-in: TOTP (an authenticator app) plus single-use recovery codes, on
django-otp's devices.

Who needs it: staff always; a member of an organisation whose owner requires it; anyone
who turned it on. A session of such a person that has not passed the second factor is
sent to the code step (or, with no device yet, to enrolment) before any page; on the API
it gets 403 `two_factor_required`. API keys are not sessions and are unaffected.

Writes here follow the house rule: keyword-only, one transaction, one audit row.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from base64 import b32encode
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.audit import audit_record
from accounts.models import Membership, Organization, RecoveryCode, RecoveryCodeDevice, User
from accounts.scopes import Role
from core.errors import Conflict, Forbidden

# A signed-in portal request: the middleware sets `user` (authenticated) and `membership`.
PortalRequest = Any
ENROLMENT_DEVICE_NAME = "Authenticator app"
# 16 characters of base32 (80 bits), shown as four groups: "7hq2-mx4k-…".
_CODE_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_CODE_LENGTH = 16

VERIFY, ENROL = "verify", "enrol"


# --- Reads ---------------------------------------------------------------------------


def has_two_factor(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def required_by(user: User) -> str | None:
    """Why this person must use a second factor ("staff", an organisation's name), or None."""
    if user.is_staff:
        return "staff"
    org = (Organization.objects.filter(memberships__user=user, is_active=True, require_two_factor=True)
           .order_by("name").values_list("name", flat=True).first())
    return org


def pending_step(request: PortalRequest) -> str | None:
    """VERIFY when a signed-in session still owes its code, ENROL when its person must use
    two-factor but has no device yet, else None (anonymous, verified, or not needed)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    # Right after the password, `login()` puts a plain user on the request: not verified.
    if getattr(user, "is_verified", lambda: False)():
        return None
    if has_two_factor(user):
        return VERIFY
    if required_by(user):
        return ENROL
    return None


def settings_summary(request: PortalRequest) -> dict:
    """What the Settings page shows about sign-in, for the person and (owners) the organisation."""
    user, membership = request.user, request.membership
    summary = {"two_factor_on": has_two_factor(user), "two_factor_required_by": required_by(user),
               "recovery_codes_left": recovery_codes_left(user), "is_owner": membership.role == Role.OWNER}
    if summary["is_owner"]:
        summary["members_without_two_factor"] = list(members_without_two_factor(membership.organization))
    return summary


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(device__user=user).count()


def members_without_two_factor(organization: Organization) -> QuerySet[Membership]:
    with_device = TOTPDevice.objects.filter(confirmed=True).values("user_id")
    return (Membership.objects.filter(organization=organization).exclude(user_id__in=with_device)
            .select_related("user").order_by("user__email"))


def recovery_code_hash(code: str) -> str:
    """Codes are compared without case, spaces or dashes, as people type them."""
    normal = "".join(code.split()).replace("-", "").lower()
    return hashlib.sha256(normal.encode()).hexdigest()


def secret_for_people(device: TOTPDevice) -> str:
    """The TOTP key as authenticator apps take it when typed: base32, in groups of four."""
    raw = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def qr_code_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URL as an inline SVG QR code, drawn on the server."""
    import segno

    out = io.BytesIO()
    segno.make(device.config_url, error="m").save(out, kind="svg", scale=5, border=2, xmldecl=False,
                                                   svgns=True, title="QR code for your authenticator app")
    return out.getvalue().decode()


# --- Enrolment -----------------------------------------------------------------------


def enrolment_device(*, user: User) -> TOTPDevice:
    """The unconfirmed device being enrolled: the same one (and QR code) until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name=ENROLMENT_DEVICE_NAME, confirmed=False)


def _new_codes(user: User) -> list[str]:
    device, _ = RecoveryCodeDevice.objects.get_or_create(user=user, defaults={"name": "Recovery codes"})
    device.codes.all().delete()
    codes = ["".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
             for _ in range(settings.TWO_FACTOR_RECOVERY_CODES)]
    RecoveryCode.objects.bulk_create([RecoveryCode(device=device, code_hash=recovery_code_hash(c)) for c in codes])
    return ["-".join(c[i:i + 4] for i in range(0, _CODE_LENGTH, 4)) for c in codes]


@transaction.atomic
def two_factor_enrol(*, request: PortalRequest, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the device with a code from the app. Returns the new recovery codes (to be
    shown once) and marks the session verified; None when the code is wrong."""
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=request.user, confirmed=False)
    if not device.verify_token(code):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=request.user, confirmed=False).delete()
    codes = _new_codes(request.user)
    audit_record("user.two_factor_enabled", actor=request.user, obj=request.user)
    otp_login(request, device)
    return codes


@transaction.atomic
def recovery_codes_regenerate(*, user: User) -> list[str]:
    codes = _new_codes(user)
    audit_record("user.recovery_codes_regenerated", actor=user, obj=user)
    return codes


@transaction.atomic
def two_factor_disable(*, request: PortalRequest) -> None:
    user = request.user
    reason = required_by(user)
    if reason:
        raise Conflict("Two-factor sign-in is required for staff." if reason == "staff"
                       else f"{reason} requires two-factor sign-in of its members.")
    _remove_devices(user)
    request.session.pop(DEVICE_ID_SESSION_KEY, None)
    audit_record("user.two_factor_disabled", actor=user, obj=user)


@transaction.atomic
def two_factor_reset(*, user: User, actor: User) -> None:
    """A superuser's reset for someone who lost their device and codes: they enrol again."""
    _remove_devices(user)
    audit_record("user.two_factor_reset_in_console", actor=actor, obj=user)


def _remove_devices(user: User) -> None:
    TOTPDevice.objects.filter(user=user).delete()
    RecoveryCodeDevice.objects.filter(user=user).delete()


# --- The code step at sign-in ----------------------------------------------------------


def two_factor_verify(*, request: PortalRequest, code: str) -> tuple[TOTPDevice | RecoveryCodeDevice | None, int]:
    """Six digits are checked against the authenticator app, anything else as a recovery
    code (used up). On success the session is verified, under a new session key. Returns
    the device that took the code, or None and the seconds to wait when wrong codes made
    the devices pause (0: the code was just wrong)."""
    user = request.user
    code = "".join(code.split())
    model = TOTPDevice if code.isdigit() and len(code) in (6, 8) else RecoveryCodeDevice
    with transaction.atomic():
        # The row lock makes two requests with one recovery code verify once.
        devices = list(model.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"))
        wait = throttled_for(devices)
        device = None if wait else next((d for d in devices if d.verify_token(code)), None)
        if device is None:
            return None, wait
        if model is RecoveryCodeDevice:
            audit_record("user.recovery_code_used", actor=user, obj=user,
                         changes={"codes_left": device.codes.count()})
    request.session.cycle_key()
    otp_login(request, device)
    return device, 0


def throttled_for(devices: list) -> int:
    """Seconds until one of these devices takes another try after too many wrong codes;
    0 when one may try now."""
    from django.utils import timezone

    waits = []
    for device in devices:
        allowed, details = device.verify_is_allowed()
        if allowed:
            return 0
        waits.append((details["locked_until"] - timezone.now()).total_seconds())
    return max(1, round(min(waits))) if waits else 0


# --- The organisation's requirement ----------------------------------------------------


@transaction.atomic
def organization_require_two_factor(*, organization: Organization, required: bool, actor: User,
                                    actor_role: str | None) -> Organization:
    """Owners only. An owner turning it on must use it already (or they would lock the
    organisation out from under themselves)."""
    if actor_role != Role.OWNER:
        raise Forbidden("Only an owner can change the organisation's sign-in rules.")
    if required and not has_two_factor(actor):
        raise Conflict("Turn on two-factor sign-in for yourself first.")
    org = Organization.objects.select_for_update().get(pk=organization.pk)
    if org.require_two_factor != required:
        org.require_two_factor = required
        org.save(update_fields=["require_two_factor", "updated_at"])
        audit_record("organization.two_factor_requirement_changed", actor=actor, organization=org, obj=org,
                     changes={"require_two_factor": [not required, required]})
    return org
