"""Demo organisations, people and roles for `make run`. Idempotent: safe to run again."""

from __future__ import annotations

from base64 import b32decode
from decimal import Decimal

from django.contrib.auth.models import Group
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BillingMode, Membership, Organization, RecoveryCode, RecoveryCodeDevice, User
from accounts.scopes import Role
from accounts.staff import BILLING_ADMIN, SUPPORT
from accounts.two_factor import recovery_code_hash

DEMO_PASSWORD = "cloudbill-demo"
# Demo only, and public: every demo staff account's authenticator key and one recovery
# code, so the console tour works without enrolling a phone. `seed_demo` refuses to run
# under production settings (DEMO_SEEDERS is empty there), so these never reach one.
DEMO_TOTP_SECRET = "CLOUDBILLDEMOSECRETNOTFORPRODUCT"  # base32, 20 bytes
DEMO_RECOVERY_CODE = "demo-only-recovery-code"
DEMO_DEVICE_NAME = "Demo authenticator (public key)"

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
    for user in User.objects.filter(is_staff=True, email__endswith="@cloudbill.example"):
        seed_two_factor(user)
    if stdout:
        stdout.write(f"accounts: {len(orgs)} organisations, {len(PEOPLE) + 1} people")


def seed_two_factor(user: User) -> None:
    """The public demo key and recovery code on a staff account; the code is put back on
    every run, so the tour can use it again after a restart."""
    TOTPDevice.objects.update_or_create(
        user=user, name=DEMO_DEVICE_NAME,
        defaults={"key": b32decode(DEMO_TOTP_SECRET).hex(), "confirmed": True, "throttling_failure_count": 0},
    )
    device, _ = RecoveryCodeDevice.objects.get_or_create(user=user, defaults={"name": "Recovery codes"})
    RecoveryCode.objects.get_or_create(device=device, code_hash=recovery_code_hash(DEMO_RECOVERY_CODE))
