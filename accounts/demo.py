"""Demo organisations, people and roles for `make run`. Idempotent: safe to run again."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import Group

from accounts.models import BillingMode, Membership, Organization, User
from accounts.scopes import Role
from accounts.staff import BILLING_ADMIN, SUPPORT

DEMO_PASSWORD = "cloudbill-demo"

ORGANIZATIONS = [
    dict(slug="acme-ai", name="Acme AI", legal_name="Acme AI Labs Inc.", country="US", currency="USD",
         address_line1="500 Howard St", city="San Francisco", postal_code="94105", region="CA",
         billing_email="ap@acme-ai.example", billing_mode=BillingMode.PREPAID),
    dict(slug="nordlicht", name="Nordlicht Render", legal_name="Nordlicht Render GmbH", country="DE",
         currency="EUR", vat_id="DE811907980", address_line1="Torstraße 49", city="Berlin", postal_code="10119",
         billing_email="rechnung@nordlicht.example", billing_mode=BillingMode.POSTPAID,
         credit_limit=Decimal("25000"), payment_terms_days=30),
    dict(slug="tinyml", name="TinyML Studio", legal_name="TinyML Studio Ltd", country="GB", currency="USD",
         address_line1="1 Finsbury Ave", city="London", postal_code="EC2M 2PF",
         billing_email="billing@tinyml.example", billing_mode=BillingMode.PREPAID),
]

PEOPLE = [
    # (email, name, [(org slug, role)], staff group)
    ("customer@cloudbill.example", "Casey Customer", [("acme-ai", Role.OWNER), ("nordlicht", Role.BILLING)], None),
    ("dev@acme-ai.example", "Dana Developer", [("acme-ai", Role.VIEWER)], None),
    ("finance@acme-ai.example", "Farid Finance", [("acme-ai", Role.BILLING)], None),
    ("owner@nordlicht.example", "Nora Nordlicht", [("nordlicht", Role.OWNER)], None),
    ("owner@tinyml.example", "Tim Tiny", [("tinyml", Role.OWNER)], None),
    ("staff@cloudbill.example", "Sam Staff", [], BILLING_ADMIN),
    ("support@cloudbill.example", "Sasha Support", [], SUPPORT),
]


def seed(stdout=None) -> None:
    orgs = {}
    for spec in ORGANIZATIONS:
        spec = dict(spec)
        slug = spec.pop("slug")
        orgs[slug], _ = Organization.objects.update_or_create(slug=slug, defaults=spec)
    for email, name, memberships, group in PEOPLE:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=DEMO_PASSWORD, full_name=name)
        if group:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
            user.groups.add(Group.objects.get(name=group))
        for slug, role in memberships:
            Membership.objects.update_or_create(user=user, organization=orgs[slug], defaults={"role": role})
    admin = User.objects.filter(email="admin@cloudbill.example").first()
    if admin is None:
        User.objects.create_superuser(email="admin@cloudbill.example", password=DEMO_PASSWORD, full_name="Ada Admin")
    if stdout:
        stdout.write(f"accounts: {len(orgs)} organisations, {len(PEOPLE) + 1} people")
