"""Every write to accounts: keyword-only, one transaction, one audit row."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accounts import keys
from accounts.audit import audit_record, model_changes
from accounts.models import ApiKey, ApiKeyKind, Invitation, Membership, Organization, User
from accounts.scopes import ORGANIZATION_SCOPES, PLATFORM_SCOPES, ROLE_SCOPES, Role
from accounts.tenancy import Caller, key_maker_authority, person_caller
from core import sqlrows
from core.errors import Conflict, DomainError, Forbidden, NotFound

BILLING_PROFILE_FIELDS = (
    "name",
    "legal_name",
    "billing_email",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "region",
    "country",
    "vat_id",
)
STAFF_ONLY_PROFILE_FIELDS = ("currency", "billing_mode", "credit_limit", "payment_terms_days", "tax_exempt", "is_active")


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _full_clean(instance: Model) -> None:
    try:
        instance.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise DomainError(messages[0], code="invalid", field=None if field == "__all__" else field) from exc


@transaction.atomic
def organization_create(
    *, name: str, actor: User | None = None, api_key: ApiKey | None = None, owner: User | None = None, **profile: Any
) -> Organization:
    unknown = set(profile) - set(BILLING_PROFILE_FIELDS) - set(STAFF_ONLY_PROFILE_FIELDS) - {"slug"}
    if unknown:
        raise DomainError(f"Unknown billing profile fields: {', '.join(sorted(unknown))}.")
    org = Organization(name=name, **profile)
    if not org.slug:
        org.slug = _unique_slug(name)
    _full_clean(org)
    org.save()
    if owner is not None:
        Membership.objects.create(user=owner, organization=org, role=Role.OWNER)
    audit_record(
        "organization.created", actor=actor, api_key=api_key, organization=org, obj=org, changes={"name": name, **profile}
    )
    return org


@transaction.atomic
def organization_update(
    *, organization: Organization, actor: User | None = None, api_key: ApiKey | None = None,
    staff: bool = False, **fields: Any,
) -> Organization:
    allowed = set(BILLING_PROFILE_FIELDS) | (set(STAFF_ONLY_PROFILE_FIELDS) if staff else set())
    refused = set(fields) - allowed
    if refused:
        raise DomainError(f"These fields can only be changed by staff: {', '.join(sorted(refused))}.")
    org = Organization.objects.select_for_update().get(pk=organization.pk)
    changes = model_changes(org, fields)
    for name, value in fields.items():
        setattr(org, name, value)
    _full_clean(org)
    org.save()
    if changes:
        audit_record("organization.updated", actor=actor, api_key=api_key, organization=org, obj=org, changes=changes)
    return org


@transaction.atomic
def user_set_time_zone(*, user: User, time_zone: str) -> User:
    """The zone the portal and console show `user` times in (documents stay in UTC)."""
    person = User.objects.select_for_update().get(pk=user.pk)
    before = person.time_zone
    person.time_zone = time_zone
    _full_clean(person)
    person.save(update_fields=["time_zone"])
    if before != time_zone:
        audit_record("user.time_zone_changed", actor=user, obj=person, changes={"time_zone": [before, time_zone]})
    return person


# --- Members ------------------------------------------------------------------


def _owner_count(organization: Organization) -> int:
    return Membership.objects.filter(organization=organization, role=Role.OWNER).count()


# Managing members needs members:write; the platform's organizations:write ("create and
# edit organisations and their members") serves too.
MANAGE_MEMBERS_SCOPES = ("members:write", "organizations:write")


def _check_may_manage(by: Caller, organization: Organization, *, target_role: str | None = None,
                      new_role: str | None = None) -> None:
    """The owner rules, the one place they live; the portal, a session on the API and a key
    all come through here. A key acts with its maker's role (accounts.tenancy).

    - Only owners and admins of the organisation (and the platform) manage members.
    - Only an owner (or the platform) makes, changes or removes an owner.
    - Nobody grants a role holding a scope they do not hold themselves.
    (That the last owner stays is checked under the organisation's lock, by the callers.)
    """
    if not any(by.can(scope) for scope in MANAGE_MEMBERS_SCOPES):
        raise Forbidden("Only owners and admins manage members.")
    if not by.platform:
        if by.organization is None or by.organization.pk != organization.pk:
            raise NotFound("No such organisation.")
        if by.role not in (Role.OWNER, Role.ADMIN):
            raise Forbidden("Only owners and admins manage members.")
        if by.role != Role.OWNER and Role.OWNER in (target_role, new_role):
            raise Forbidden("Only an owner can make, change or remove owners.")
    if new_role is not None:
        _check_holds(by, ROLE_SCOPES[new_role], what=f"the {new_role} role", field="role")


def _check_holds(by: Caller, scopes: Iterable[str], *, what: str, field: str) -> None:
    """Nobody grants a scope they do not hold."""
    missing = sorted(set(scopes) - by.scopes)
    if missing:
        raise Forbidden(f"You cannot grant {what}: you do not hold {', '.join(missing)}.", field=field)


def _lock_membership(membership: Membership) -> Membership:
    """Lock the organisation row, then the membership. Every change to an organisation's
    members takes the organisation's lock first, so two owners demoting or removing
    each other at once run one after the other (and cannot deadlock): the second sees
    the first's result and the last owner stays."""
    Organization.objects.select_for_update().filter(pk=membership.organization_id).first()
    m = Membership.objects.select_for_update().select_related("user", "organization").filter(pk=membership.pk).first()
    if m is None:
        raise NotFound("This person is no longer a member.")
    return m


def organization_owner_ids_locked(organization_id: int) -> set[int]:
    """Take the organisation's member lock (the one `_lock_membership` takes first) and
    return its owners' membership ids, which cannot change until the caller's transaction
    ends. For code that edits memberships outside these services: the console's forms."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("organization_owner_ids_locked needs a transaction to hold its lock")
    Organization.objects.select_for_update().filter(pk=organization_id).first()
    return set(Membership.objects.filter(organization_id=organization_id, role=Role.OWNER).values_list("pk", flat=True))


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, by: Caller) -> Membership:
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}.", field="role")
    m = _lock_membership(membership)
    _check_may_manage(by, m.organization, target_role=m.role, new_role=role)
    if m.role == Role.OWNER and role != Role.OWNER and _owner_count(m.organization) <= 1:
        raise Conflict("An organisation needs at least one owner.")
    old = m.role
    if old == role:
        return m
    m.role = role
    m.save(update_fields=["role"])
    audit_record(
        "member.role_changed", actor=by.user, api_key=by.api_key, organization=m.organization, obj=m,
        changes={"user": m.user.email, "role": [old, role]},
    )
    return m


@transaction.atomic
def membership_remove(*, membership: Membership, by: Caller) -> None:
    """The member's keys stop working with the membership (accounts.tenancy reads the
    maker's membership at every request); they stay listed, for the audit trail."""
    m = _lock_membership(membership)
    _check_may_manage(by, m.organization, target_role=m.role)
    if m.role == Role.OWNER and _owner_count(m.organization) <= 1:
        raise Conflict("An organisation needs at least one owner.")
    audit_record("member.removed", actor=by.user, api_key=by.api_key, organization=m.organization, obj=m,
                 changes={"user": m.user.email})
    m.delete()


@transaction.atomic
def membership_add(*, organization: Organization, user: User, role: str, by: Caller) -> Membership:
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}.", field="role")
    _check_may_manage(by, organization, new_role=role)
    try:
        with transaction.atomic():
            m = Membership.objects.create(organization=organization, user=user, role=role)
    except IntegrityError:
        raise Conflict(f"{user.email} is already a member.", field="email")
    audit_record("member.added", actor=by.user, api_key=by.api_key, organization=organization, obj=m,
                 changes={"user": user.email, "role": role})
    return m


# --- Invitations --------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, by: Caller,
    accept_url_builder: Callable[[str], str] | None = None,
) -> tuple[Invitation, str]:
    """Returns the invitation and its one-time token (only ever sent by email)."""
    email = User.objects.normalize_email(email).lower()
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}.", field="role")
    _check_may_manage(by, organization, new_role=role)
    invited_by = _person_behind(by)
    if Membership.objects.filter(organization=organization, user__email=email).exists():
        raise Conflict(f"{email} is already a member.", field="email")
    # An expired pending invitation is retired so a new one can be sent.
    Invitation.objects.filter(
        organization=organization, email=email, accepted_at=None, revoked_at=None, expires_at__lte=timezone.now()
    ).update(revoked_at=timezone.now())
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                organization=organization, email=email, role=role, invited_by=invited_by,
                token_hash=_token_hash(token), expires_at=timezone.now() + settings.INVITATION_TTL,
            )
    except IntegrityError:
        raise Conflict(f"{email} already has a pending invitation.", field="email")
    audit_record("invitation.created", actor=by.user, api_key=by.api_key, organization=organization,
                 obj=invitation, changes={"email": email, "role": role})
    inviter = invited_by.get_full_name() if invited_by else organization.name
    path = reverse("accept_invitation", args=[token])
    # The portal builds the link from its request; the API and commands have none, so
    # the configured portal address stands in (a bare path in an email links nowhere).
    url = accept_url_builder(path) if accept_url_builder else settings.PORTAL_BASE_URL.rstrip("/") + path
    transaction.on_commit(lambda: send_mail(
        subject=f"You are invited to {organization.name} on {settings.PORTAL_BRAND}",
        message=(
            f"{inviter} invited you to join {organization.name} as {role}.\n\n"
            f"Accept within {settings.INVITATION_TTL.days} days: {url}\n"
        ),
        from_email=None,
        recipient_list=[email],
    ))
    return invitation, token


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User) -> None:
    inv = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if inv.status != "pending":
        raise Conflict(f"This invitation is already {inv.status}.")
    inv.revoked_at = timezone.now()
    inv.save(update_fields=["revoked_at"])
    audit_record("invitation.revoked", actor=actor, organization=inv.organization, obj=inv, changes={"email": inv.email})


def invitation_for_token(token: str) -> Invitation:
    try:
        return Invitation.objects.select_related("organization").get(token_hash=_token_hash(token))
    except Invitation.DoesNotExist:
        raise NotFound("This invitation link is not valid.")


@transaction.atomic
def invitation_accept(*, token: str, user: User | None = None, password: str | None = None,
                      full_name: str = "") -> Membership:
    """Accept as the signed-in user, or create the account with `password`. The role is
    granted now, so whoever sent the invitation must still be allowed to grant it."""
    inv = Invitation.objects.select_for_update().get(pk=invitation_for_token(token).pk)
    if inv.status != "pending":
        raise Conflict(f"This invitation is {inv.status}.")
    if inv.invited_by is not None:
        try:
            _check_may_manage(person_caller(inv.invited_by, inv.organization), inv.organization, new_role=inv.role)
        except DomainError:
            raise Conflict("Whoever sent this invitation may no longer grant this role: ask for a new one.")
    if user is None:
        if User.objects.filter(email=inv.email).exists():
            raise Conflict("An account with this email exists: sign in first, then open the link again.")
        if not password:
            raise DomainError("Choose a password.", field="password")
        user = User.objects.create_user(email=inv.email, password=password, full_name=full_name)
    elif user.email.lower() != inv.email:
        raise DomainError(f"This invitation is for {inv.email}; you are signed in as {user.email}.")
    inv.accepted_at = timezone.now()
    inv.save(update_fields=["accepted_at"])
    membership = Membership.objects.create(organization=inv.organization, user=user, role=inv.role)
    audit_record("invitation.accepted", actor=user, organization=inv.organization, obj=membership,
                 changes={"email": inv.email, "role": inv.role})
    return membership


# --- API keys -------------------------------------------------------------------


def _person_behind(by: Caller) -> User | None:
    """The person a change is made for: the member or staff member, or the maker of the
    key that made it (None for the platform)."""
    if by.user is not None:
        return by.user
    return by.api_key.created_by if by.api_key is not None else None


@transaction.atomic
def api_key_create(
    *, name: str, scopes: list[str], organization: Organization | None, by: Caller | None,
) -> tuple[ApiKey, str]:
    """Returns the key row and the full secret, which is never stored nor shown again.

    `by` is who asks for the key; None is the platform itself (`create_platform_key`).
    A key holds at most the scopes of whoever makes it, and records the person behind it
    (for a key made by a key, that key's maker): what it may do is then cut, at every
    request, to what that person still holds (accounts.tenancy.key_caller)."""
    kind = ApiKeyKind.ORGANIZATION if organization is not None else ApiKeyKind.PLATFORM
    allowed = ORGANIZATION_SCOPES if organization is not None else PLATFORM_SCOPES
    scopes = sorted(set(scopes))
    if not scopes:
        raise DomainError("Choose at least one scope.", field="scopes")
    refused = [s for s in scopes if s not in allowed]
    if refused:
        raise DomainError(f"Not a scope a {kind} key can hold: {', '.join(refused)}.", field="scopes")
    if not name.strip():
        raise DomainError("Give the key a name.", field="name")
    if by is not None:
        if not by.can("api_keys:write"):
            raise Forbidden("Only owners and admins create API keys.")
        if not by.platform and (organization is None or by.organization is None
                                or by.organization.pk != organization.pk):
            raise NotFound("No such organisation.", field="organization")
        _check_holds(by, scopes, what="these scopes", field="scopes")
    created_by = _person_behind(by) if by is not None else None
    material = keys.generate()
    key = ApiKey.objects.create(
        kind=kind, organization=organization, name=name.strip()[:100], prefix=material.prefix,
        secret_hash=keys.hash_secret(material.secret), scopes=scopes, created_by=created_by,
    )
    audit_record("api_key.created", actor=created_by, api_key=by.api_key if by else None, organization=organization,
                 obj=key, changes={"name": key.name, "scopes": scopes, "prefix": key.prefix})
    return key, material.full


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: User | None, by_key: ApiKey | None = None) -> ApiKey:
    key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if key.revoked_at is not None:
        return key
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    audit_record("api_key.revoked", actor=actor, api_key=by_key, organization=key.organization, obj=key,
                 changes={"prefix": key.prefix})
    return key


# The key behind every API request, its organisation, its maker and the maker's role in
# one bare statement (core.sqlrows): the ORM's compiling of the same select_related query
# with its subquery cost ~1 ms of Python a request, ten times running it. The subquery is
# accounts.tenancy.key_maker_membership's rule (a membership begun no later than the key);
# accounts/tests/test_api_keys.py holds the two to the same answers.
@cache
def _key_sql() -> str:
    return f"""
SELECT {sqlrows.columns(ApiKey, "k")}, {sqlrows.columns(Organization, "o")}, {sqlrows.columns(User, "u")},
       (SELECT m.role FROM {Membership._meta.db_table} m
        WHERE m.user_id = k.created_by_id AND m.organization_id = k.organization_id AND m.created_at <= k.created_at
        LIMIT 1)
FROM {ApiKey._meta.db_table} k
LEFT JOIN {Organization._meta.db_table} o ON o.id = k.organization_id
LEFT JOIN {User._meta.db_table} u ON u.id = k.created_by_id
WHERE k.prefix = %s"""  # noqa: S608 - the models' tables and columns


def _key_by_prefix(prefix: str) -> tuple[ApiKey, str | None] | None:
    """The key with this prefix (its organisation and maker attached) and its maker's
    role in the key's organisation now (None: not a member, or no maker)."""
    with connection.cursor() as cursor:
        cursor.execute(_key_sql(), [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    a, b = sqlrows.width(ApiKey), sqlrows.width(ApiKey) + sqlrows.width(Organization)
    key = sqlrows.instance(ApiKey, row[:a])
    assert key is not None
    key.organization = sqlrows.instance(Organization, row[a:b])
    key.created_by = sqlrows.instance(User, row[b:-1])
    return key, row[-1]


def api_key_authenticate(raw: str, *, now: datetime | None = None) -> ApiKey | None:
    """The active key for a raw bearer string, or None. An organisation key whose maker
    has left the organisation (or was deactivated) is None too. The key comes back with
    `maker_authority`, read in the same query, for accounts.tenancy.key_caller. Touches
    last_used_at at most once a minute per key, so authentication is not a write per
    request."""
    material = keys.parse(raw)
    if material is None:
        return None
    found = _key_by_prefix(material.prefix)
    if found is None:
        return None
    key, maker_role = found
    if not keys.secret_matches(material.secret, key.secret_hash) or key.revoked_at is not None:
        return None
    if key.organization is not None:
        if not key.organization.is_active:
            return None
        authority = key_maker_authority(key, maker_role=maker_role, looked_up=True)
        if authority is None:
            return None
        key.maker_authority = authority  # type: ignore[attr-defined]  # read by tenancy.key_caller
    now = now or timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def member_add_or_invite(
    *, organization: Organization, email: str, role: str, by: Caller,
    accept_url_builder: Callable[[str], str] | None = None,
) -> Membership | Invitation:
    """An existing user becomes a member at once; anyone else gets an invitation."""
    email = User.objects.normalize_email(email).lower()
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}.", field="role")
    _check_may_manage(by, organization, new_role=role)
    user = User.objects.filter(email=email).first()
    if user is not None:
        return membership_add(organization=organization, user=user, role=role, by=by)
    invitation, _token = invitation_create(
        organization=organization, email=email, role=role, by=by, accept_url_builder=accept_url_builder,
    )
    return invitation
