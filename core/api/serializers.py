from collections.abc import Mapping

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
