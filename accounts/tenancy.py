"""Who is calling and which organisations they may touch.

Every query a customer can reach goes through `Caller.scope_queryset` (API) or
`current_membership` (portal), so tenancy is enforced in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiKey, ApiKeyKind, Membership, Organization, User
from accounts.scopes import PLATFORM_SCOPES, READ_SCOPES, ROLE_SCOPES
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
        try:
            return Organization.objects.get(pk=wanted)
        except Organization.DoesNotExist:
            raise NotFound("No such organisation.", field="organization")


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


def caller_for(user: User | None, api_key: ApiKey | None, request: HttpRequest | None = None) -> Caller:
    if api_key is not None:
        return Caller(
            api_key=api_key,
            organization=api_key.organization,
            platform=api_key.kind == ApiKeyKind.PLATFORM,
            scopes=frozenset(api_key.scopes),
        )
    if user is None or not user.is_authenticated:
        return ANONYMOUS
    scopes = staff_scopes(user)
    if scopes:
        return Caller(user=user, platform=True, scopes=scopes)
    membership = current_membership(request) if request is not None else None
    if membership is None:
        return Caller(user=user)
    return Caller(
        user=user,
        organization=membership.organization,
        role=membership.role,
        scopes=ROLE_SCOPES[membership.role],
    )
