"""Who is calling and which organisations they may touch.

Every query a customer can reach goes through `Caller.scope_queryset` (API) or
`current_membership` (portal), so tenancy is enforced in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiKey, ApiKeyKind, Membership, Organization, User
from accounts.scopes import ORGANIZATION_SCOPES, PLATFORM_SCOPES, READ_SCOPES, ROLE_SCOPES, Role
from core import sqlrows
from core.errors import DomainError, NotFound

SESSION_KEY = "organization_id"


def current_membership(request: HttpRequest) -> Membership | None:
    """The membership the portal acts through: the organisation picked in the switcher,
    else the user's first. Never an organisation the user does not belong to."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("organization").filter(user=user, organization__is_active=True)
    wanted = request.session.get(SESSION_KEY)
    m = memberships.filter(organization_id=wanted).first() if wanted else None
    if m is None:
        m = memberships.order_by("organization__name").first()
        if m is not None:
            request.session[SESSION_KEY] = m.organization_id
    return m


def staff_scopes(user: User) -> frozenset[str]:
    if not (user.is_active and user.is_staff):
        return frozenset()
    if user.has_perm("accounts.platform_write"):
        return PLATFORM_SCOPES
    if user.has_perm("accounts.platform_read"):
        return READ_SCOPES
    return frozenset()


@dataclass(frozen=True)
class Caller:
    """Who acts, where, with which scopes, and with which role for the owner rules.

    `role` is the member role the caller acts with: a member's own, an organisation key's
    maker's (the owner rules read it, in accounts.services), None for the platform (staff,
    platform keys: `platform` is True) and for callers who are nobody's member. `scopes`
    are what the caller may do now: for a key, its own scopes cut to what its maker holds.
    """

    user: User | None = None
    api_key: ApiKey | None = None
    organization: Organization | None = None
    role: str | None = None
    platform: bool = False
    scopes: frozenset[str] = field(default_factory=frozenset)

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def actor(self) -> User | None:
        return self.user

    def scope_queryset(self, qs: QuerySet, organization_field: str = "organization") -> QuerySet:
        """Rows of the caller's organisation only; platform callers see every row."""
        if self.platform:
            return qs
        if self.organization is None:
            return qs.none()
        return qs.filter(**{organization_field: self.organization.pk})

    def target_organization(self, organization_id: int | str | None = None) -> Organization:
        """The organisation a write acts on. Customers act on their own (naming another
        is a 404); platform callers must name one."""
        wanted = _organization_id(organization_id)
        if not self.platform:
            if self.organization is None:
                raise NotFound("No organisation.")
            if wanted is not None and wanted != self.organization.pk:
                raise NotFound("No such organisation.", field="organization")
            return self.organization
        if wanted is None:
            raise DomainError("Name the organisation.", field="organization")
        # Bare SQL (core.sqlrows): asked on every platform call that names an organisation.
        org = sqlrows.get(Organization, "t.id = %s", [wanted])
        if org is None:
            raise NotFound("No such organisation.", field="organization")
        return org


def _organization_id(value: int | str | None) -> int | None:
    """An organisation id from a URL or body: None when absent, a 400 when not an id."""
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise DomainError("Must be an organisation id (a whole number).", field="organization")
    if not 0 < number < 2**63:  # beyond the id column's range: no such organisation
        raise NotFound("No such organisation.", field="organization")
    return number


ANONYMOUS = Caller()
# The platform itself, for code that acts on no one's request (tests, one-off scripts).
SYSTEM = Caller(platform=True, scopes=PLATFORM_SCOPES)


def membership_caller(membership: Membership) -> Caller:
    """A member acting in their organisation (the portal, a session on the API)."""
    return Caller(
        user=membership.user,
        organization=membership.organization,
        role=membership.role,
        scopes=ROLE_SCOPES[membership.role],
    )


def person_caller(user: User, organization: Organization) -> Caller:
    """What a person may do in an organisation now, outside any request of theirs (to
    check again, later, what they granted)."""
    scopes = staff_scopes(user)
    if scopes:
        return Caller(user=user, platform=True, scopes=scopes)
    membership = Membership.objects.select_related("user", "organization").filter(
        user=user, organization=organization).first()
    if membership is None or not user.is_active:
        return Caller(user=user)
    return membership_caller(membership)


@dataclass(frozen=True)
class Authority:
    """What the maker of an organisation key may do in the key's organisation now."""

    role: str | None
    scopes: frozenset[str]


# An organisation key made by the platform (a platform key, a command) answers to no
# member: inside its organisation it acts with an owner's authority, its scopes its own.
PLATFORM_MADE = Authority(role=Role.OWNER, scopes=ORGANIZATION_SCOPES)


def key_maker_membership(*, maker: Any, organization: Any, made_at: Any) -> QuerySet[Membership]:
    """The membership an organisation key was made under, while its maker is still in it
    (values, or OuterRefs for a subquery). A membership that began after the key (the
    maker left and was invited back) does not count: a key lives no longer than the
    membership it was made in."""
    return Membership.objects.filter(user_id=maker, organization_id=organization, created_at__lte=made_at)


def key_maker_authority(api_key: ApiKey, *, maker_role: str | None = None, looked_up: bool = False) -> Authority | None:
    """The maker's authority over an organisation key now, read at every request (so a
    role changed anywhere, the console included, counts at once); None when the maker no
    longer stands behind the key (left the organisation, deactivated).

    With `looked_up`, `maker_role` is the maker's role as the authentication query
    already read it (None: no longer a member); otherwise it is read here."""
    if api_key.created_by_id is None:
        return PLATFORM_MADE
    maker = api_key.created_by
    if maker is None:
        return PLATFORM_MADE
    if not maker.is_active:
        return None
    held = staff_scopes(maker)
    if held:  # made by staff: the platform's authority, as far as the staff member's own
        return Authority(role=Role.OWNER, scopes=held & ORGANIZATION_SCOPES)
    if not looked_up:
        maker_role = key_maker_membership(
            maker=api_key.created_by_id, organization=api_key.organization_id, made_at=api_key.created_at
        ).values_list("role", flat=True).first()
    if maker_role is None:
        return None
    return Authority(role=maker_role, scopes=ROLE_SCOPES[maker_role])


def key_caller(api_key: ApiKey, authority: Authority | None = None) -> Caller:
    if api_key.kind == ApiKeyKind.PLATFORM:
        return Caller(api_key=api_key, platform=True, scopes=frozenset(api_key.scopes))
    authority = authority or key_maker_authority(api_key)
    if authority is None:
        return Caller(api_key=api_key, organization=api_key.organization)
    return Caller(
        api_key=api_key,
        organization=api_key.organization,
        role=authority.role,
        scopes=frozenset(api_key.scopes) & authority.scopes,
    )


def caller_for(user: User | None, api_key: ApiKey | None, request: HttpRequest | None = None) -> Caller:
    if api_key is not None:
        return key_caller(api_key, getattr(api_key, "maker_authority", None))
    if user is None or not user.is_authenticated:
        return ANONYMOUS
    scopes = staff_scopes(user)
    if scopes:
        return Caller(user=user, platform=True, scopes=scopes)
    membership = current_membership(request) if request is not None else None
    if membership is None:
        return Caller(user=user)
    return membership_caller(membership)
