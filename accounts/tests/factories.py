import hashlib
from datetime import timedelta

import factory
from django.utils import timezone

from accounts.models import ApiKey, Invitation, Membership, Organization, User
from accounts.scopes import ORGANIZATION_SCOPES, PLATFORM_SCOPES, Role
from accounts.services import api_key_create
from accounts.tests.tenancy import tenant_factory


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    legal_name = factory.LazyAttribute(lambda o: f"{o.name} Ltd")
    country = "US"
    currency = "USD"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.OWNER


class InvitationFactory(factory.django.DjangoModelFactory):
    """A pending invitation. Its token is not known: tests that accept one use the service."""

    class Meta:
        model = Invitation

    organization = factory.SubFactory(OrganizationFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Role.VIEWER
    token_hash = factory.Sequence(lambda n: hashlib.sha256(f"invitation-{n}".encode()).hexdigest())
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))


def make_api_key(organization: Organization | None, scopes=None, name: str = "test") -> tuple[ApiKey, str]:
    """An active key and its raw bearer string (organisation key, or platform key for None)."""
    if scopes is None:
        scopes = ORGANIZATION_SCOPES if organization is not None else PLATFORM_SCOPES
    return api_key_create(name=name, scopes=list(scopes), organization=organization, by=None)


# --- Tenancy: how to make each accounts model for a given organisation -------------


@tenant_factory(Organization)
def tenant_organization(organization: Organization) -> Organization:
    return organization


@tenant_factory(Membership)
def tenant_membership(organization: Organization) -> Membership:
    return MembershipFactory(organization=organization, role=Role.VIEWER)


@tenant_factory(Invitation)
def tenant_invitation(organization: Organization) -> Invitation:
    return InvitationFactory(organization=organization)


@tenant_factory(ApiKey)
def tenant_api_key(organization: Organization) -> ApiKey:
    return make_api_key(organization, scopes=["account:read"], name="tenancy")[0]
