from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

from accounts.scopes import Role
from accounts.tax_ids import compact_vat_id, validate_country, vat_id_problem
from core.formatting import validate_time_zone
from core.money import currency_field, money_field


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("Users need an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):  # type: ignore[django-manager-missing]  # django-otp ships no types, so its Device subclasses look untyped
    """A person: a customer's member, a staff member, or both. Logs in by email."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False, help_text="May log in to the billing console.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # IANA name; the portal and console show times in it (accounts.middleware). Documents
    # and emails stay in UTC (core.formatting.DOCUMENT_TIME_ZONE).
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone],
                                 help_text="Times on the portal's pages are shown in this zone.")

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return (self.full_name.split(" ")[0] if self.full_name else self.email.split("@")[0])


class BillingMode(models.TextChoices):
    PREPAID = "prepaid", "Prepaid (credit balance)"
    POSTPAID = "postpaid", "Postpaid (invoiced, credit limit)"


class Organization(models.Model):
    """The billed customer, with its billing profile.

    The billing profile is snapshotted onto each invoice when it is finalized, so editing
    it here never changes an issued invoice.
    """

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    # Billing profile.
    legal_name = models.CharField(max_length=200, blank=True)
    billing_email = models.EmailField(blank=True)
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    region = models.CharField(max_length=100, blank=True)
    # ISO 3166-1 alpha-2 (accounts.tax_ids); drives the tax rate. A VAT id is checked
    # against this country's check digits in clean(); it drives the EU reverse charge.
    country = models.CharField(
        max_length=2,
        blank=True,
        validators=[RegexValidator(r"^[A-Z]{2}$", "Use a two-letter ISO 3166 country code, e.g. DE.")],
    )
    vat_id = models.CharField("VAT id", max_length=30, blank=True)
    tax_exempt = models.BooleanField(default=False)
    currency = currency_field(default="USD", help_text="ISO 4217 code all of this customer's money is in.")
    billing_mode = models.CharField(max_length=10, choices=BillingMode.choices, default=BillingMode.PREPAID)
    credit_limit = money_field(
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Postpaid only: how much may be owed before service is limited.",
    )
    payment_terms_days = models.PositiveSmallIntegerField(default=14, help_text="Net terms for postpaid invoices.")
    is_active = models.BooleanField(default=True)
    require_two_factor = models.BooleanField(
        default=False, help_text="Set by an owner: members sign in with a second factor, or enrol first."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("platform_read", "Read every organisation's data through the API"),
            ("platform_write", "Act on every organisation's data through the API"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="organization_credit_limit_nonneg"),
        ]

    def __str__(self) -> str:
        return self.name

    # (country, vat_id) as loaded from the database; None on a new row.
    _stored_tax_identity: tuple[str | None, str | None] | None = None

    @classmethod
    def from_db(cls, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any) -> Organization:
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._stored_tax_identity = (instance.__dict__.get("country"), instance.__dict__.get("vat_id"))
        return instance

    def clean(self) -> None:
        """The country must be one of ISO 3166 and the VAT id must pass its country's check
        digits (accounts.tax_ids), checked when either is new or changed: a row stored
        before these rules keeps saving (`manage.py billing_profiles_check` lists such
        rows) until someone edits its country or VAT id."""
        super().clean()
        if self._stored_tax_identity == (self.country, self.vat_id):
            return
        self.vat_id = (self.vat_id or "").strip()
        try:
            validate_country(self.country)
        except ValidationError as exc:
            raise ValidationError({"country": exc.messages}, code="invalid_country") from exc
        problem = vat_id_problem(self.vat_id, self.country)
        if problem:
            raise ValidationError({"vat_id": problem}, code="invalid_vat_id")
        self.vat_id = compact_vat_id(self.vat_id, self.country)

    @property
    def is_prepaid(self) -> bool:
        return self.billing_mode == BillingMode.PREPAID


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization__name", "user__email"]
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_user_org_uniq")]

    def __str__(self) -> str:
        return f"{self.user} · {self.organization} ({self.role})"


class Invitation(models.Model):
    """An emailed invitation to join an organisation. Only the token's hash is stored."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One live invitation per address and organisation.
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_pending_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class ApiKeyKind(models.TextChoices):
    ORGANIZATION = "organization", "Organisation key"
    PLATFORM = "platform", "Platform key (integrator, across organisations)"


class ApiKey(models.Model):
    """A bearer key. The secret is shown once at creation; only its SHA-256 is stored
    (the secret has 240 bits of entropy, so a slow password hash buys nothing)."""

    kind = models.CharField(max_length=12, choices=ApiKeyKind.choices, default=ApiKeyKind.ORGANIZATION)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part of the key, shown in lists.")
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="organization", organization__isnull=False) | Q(kind="platform", organization__isnull=True)),
                name="api_key_kind_matches_organization",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix})"

    @property
    def display_prefix(self) -> str:
        return f"cb_{self.prefix}_…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditLog(models.Model):
    """Who changed what, when and why. Written in the same transaction as the change;
    never edited or deleted (the admin offers no way to)."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries"
    )
    action = models.CharField(max_length=80, db_index=True, help_text="e.g. member.role_changed")
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}"


class RecoveryCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """A person's single-use recovery codes, as one django-otp device. Only each code's
    SHA-256 is stored (a code has 80 random bits, so a slow hash buys nothing); a code
    that verifies is deleted in the same transaction, under the device's row lock."""

    class Meta(Device.Meta):
        verbose_name = "recovery codes"

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    def verify_token(self, token: str) -> bool:
        from accounts.two_factor import recovery_code_hash

        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        used, _ = self.codes.filter(code_hash=recovery_code_hash(str(token))).delete()
        if used:
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
        else:
            self.throttle_increment()
        return bool(used)


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "code_hash"], name="recovery_code_device_hash_uniq")]

    def __str__(self) -> str:
        return f"recovery code {self.pk} of {self.device.user_id}"
