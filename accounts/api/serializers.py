from rest_framework import serializers

from accounts.models import ApiKey, Invitation, Membership, Organization
from accounts.scopes import PLATFORM_SCOPES, Role
from core.api.serializers import StrictModelSerializer, StrictSerializer
from core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS

PROFILE_FIELDS = [
    "name", "legal_name", "billing_email", "address_line1", "address_line2", "city", "postal_code", "region",
    "country", "vat_id",
]
STAFF_FIELDS = ["currency", "billing_mode", "credit_limit", "payment_terms_days", "tax_exempt", "is_active"]


class OrganizationSerializer(StrictModelSerializer):
    credit_limit = serializers.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, min_value=0, required=False
    )

    class Meta:
        model = Organization
        fields = ["id", "slug", *PROFILE_FIELDS, *STAFF_FIELDS, "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"slug": {"required": False}}


class OwnOrganizationSerializer(OrganizationSerializer):
    """What a customer may change of their own organisation: the billing profile."""

    credit_limit = serializers.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, read_only=True
    )

    class Meta(OrganizationSerializer.Meta):
        read_only_fields = ["id", "slug", "created_at", *STAFF_FIELDS]


class OrganizationCreateSerializer(OrganizationSerializer):
    owner_email = serializers.EmailField(required=False, write_only=True, help_text="Invited as the owner.")

    class Meta(OrganizationSerializer.Meta):
        fields = [*OrganizationSerializer.Meta.fields, "owner_email"]


class MembershipSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "full_name", "role", "created_at"]
        read_only_fields = fields


class MembershipCreateSerializer(StrictSerializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "created_at", "expires_at"]
        read_only_fields = fields


class ApiKeySerializer(serializers.ModelSerializer):
    display_prefix = serializers.CharField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "kind", "display_prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(PLATFORM_SCOPES)), allow_empty=False,
        help_text="Organisation keys may hold only organisation scopes; platform keys any.",
    )


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(
        read_only=True, allow_null=True,
        help_text="The full key. Shown once, never again: an Idempotency-Key replay returns null here.",
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields
