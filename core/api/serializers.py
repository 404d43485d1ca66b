import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class StrictFieldsMixin:
    """Refuse fields the serializer does not know or will not write, instead of silently
    dropping them: a typo in an integrator's payload is an error they should see."""

    def to_internal_value(self, data):
        errors: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            errors = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
            # A read-only field sent in a write is refused too: silently keeping the old
            # value would let a client believe it changed something.
            errors.update(
                {name: ["This field is read-only."] for name in sorted(data) if name in self.fields
                 and self.fields[name].read_only}
            )
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            # Report every bad field at once, the unknown ones with the invalid ones.
            if errors and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **errors})
            raise
        if errors:
            raise serializers.ValidationError(errors)
        return value


class StrictSerializer(StrictFieldsMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    pass


# A money amount on the wire: a string of ASCII digits with an optional fraction. JSON
# numbers are refused (many clients parse them as floats), as are exponents, signs,
# spaces and non-ASCII digits, which Decimal() would accept. The schema's pattern is this
# same constant (MoneyField's schema below), so code and schema agree.
MONEY_PATTERN = r"^[0-9]{1,18}(\.[0-9]{1,12})?$"
_MONEY_RE = re.compile(MONEY_PATTERN, re.ASCII)


@extend_schema_field({"type": "string", "format": "decimal", "pattern": MONEY_PATTERN})
class MoneyField(serializers.DecimalField):
    default_error_messages = {
        "money_format": "An amount is a string of ASCII digits with an optional fraction, e.g. \"100.00\".",
    }

    def to_internal_value(self, data: Any) -> Decimal:
        if not isinstance(data, str) or not _MONEY_RE.fullmatch(data):
            self.fail("money_format")
        return super().to_internal_value(data)
