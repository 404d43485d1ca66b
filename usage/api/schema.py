"""How the OpenAPI schema documents the events `POST /events` takes: one component per
event type (`CreatedEvent`, `MeteredEvent`, …), each with its fields and an example, and
the batch's items as `oneOf` them with a discriminator on `type`.

The components are built from the tables `usage.ingest` checks events against
(EVENT_FIELDS, NEEDS_PRODUCT), so the schema cannot drift from what is accepted. The
serializer only documents the envelope (the view checks it by hand, for speed), hence a
postprocessing hook rather than a serializer per type.

The CloudEvents bodies (`application/cloudevents+json`, `…-batch+json`) refer to one
`CloudEvent` component, built from the same tables and `usage.cloudevents`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from inflection import camelize

from usage import cloudevents as ce
from usage.ingest import COMMON_FIELDS, EVENT_FIELDS, MAX_BATCH, MAX_ID_LENGTH, NEEDS_PRODUCT
from usage.labels import MAX_LABELS, MAX_SLUG_LENGTH, MAX_VALUE_LENGTH, SLUG
from usage.models import EVENT_STATE, EventType, ResourceKind

BATCH_COMPONENT = "EventBatchRequest"
CLOUDEVENT_COMPONENT = "CloudEvent"
CLOUDEVENT_SCHEMA: dict[str, Any] = {"$ref": f"#/components/schemas/{CLOUDEVENT_COMPONENT}"}
CLOUDEVENT_BATCH_SCHEMA: dict[str, Any] = {
    "type": "array", "maxItems": MAX_BATCH, "items": CLOUDEVENT_SCHEMA,
    "description": f"The CloudEvents JSON batch format: 0 to {MAX_BATCH} events, each answered on its own.",
}
EXAMPLE_TIMESTAMP = "2026-03-01T10:17:00Z"


def _text(description: str, max_length: int = MAX_ID_LENGTH, example: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": max_length, "description": description}
    if example is not None:
        schema["example"] = example
    return schema


def _field_schemas() -> dict[str, dict[str, Any]]:
    tolerance = int(settings.USAGE_FUTURE_TOLERANCE.total_seconds() // 60)
    return {
        "id": _text("Your id for the event: sending it again within the dedup window is answered `duplicate`.",
                    example="evt_01HQ3Z"),
        "resource": _text("The platform's id of the resource (its external id).", example="srv-42"),
        "timestamp": {
            "type": "string", "format": "date-time", "example": EXAMPLE_TIMESTAMP,
            "description": (f"When it happened, ISO 8601 with a time zone; at most {tolerance} minutes ahead "
                            f"of our clock and {settings.USAGE_MAX_EVENT_AGE.days} days old."),
        },
        "product": _text("The product code the resource runs as from this event on.", 60, "cpu-4-16"),
        "organization": {"type": "integer", "minimum": 1, "example": 17,
                         "description": "The id of the active organisation that owns the new resource."},
        "kind": {"type": "string", "enum": list(ResourceKind.values), "default": ResourceKind.SERVER},
        "name": _text("A name people see; the resource id when absent.", example="web-1"),
        "metric": _text("The metric's code.", 60, "egress-gb"),
        "project": {
            "type": "string", "nullable": True, "pattern": SLUG.pattern, "maxLength": MAX_SLUG_LENGTH,
            "example": "ml-training",
            "description": ("The project's slug in the resource's organisation, created on first use; "
                            "on `updated`, null takes the resource out of its project."),
        },
        "labels": {
            "type": "object", "maxProperties": MAX_LABELS, "example": {"team": "research", "env": "prod"},
            "additionalProperties": {"type": "string", "maxLength": MAX_VALUE_LENGTH},
            "description": ("Free-form labels, Kubernetes-style keys (optional `prefix/`, a name of 1 to 63 "
                            "letters, digits, `-`, `_`, `.`) and values of at most 63 such characters; "
                            "replaces the resource's whole set."),
        },
        "quantity": {
            "oneOf": [
                {"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,12})?$"},
                {"type": "integer", "minimum": 0},
            ],
            "description": "How much, as a decimal string (at most 12 places) or an integer; below 10^18.",
            "example": "12.5",
        },
    }


def _required(event_type: str, fields: frozenset[str]) -> list[str]:
    optional = {"kind", "name", "project", "labels"}
    if event_type not in NEEDS_PRODUCT:
        optional.add("product")
    return sorted(f for f in fields if f not in optional)


def _description(event_type: EventType) -> str:
    state = EVENT_STATE.get(event_type)
    if event_type == EventType.METERED:
        return "A metered quantity (e.g. GB of egress) of a resource, billed at the metric's price."
    if event_type == EventType.UPDATED:
        return ("The resource's project and/or labels change from the timestamp on (an event older than the "
                "last change changes nothing); its state is unchanged. Carries project, labels or both.")
    if state is None:
        return f"{event_type.label}: the resource's state is unchanged."
    return f"{event_type.label}: the resource is {state} from the timestamp on."


def component_name(event_type: str) -> str:
    return f"{camelize(event_type)}Event"


def event_components() -> dict[str, dict[str, Any]]:
    """One schema component per event type, keyed by component name."""
    schemas = _field_schemas()
    components = {}
    for event_type in EventType:
        fields = EVENT_FIELDS.get(event_type, COMMON_FIELDS)
        properties: dict[str, Any] = {"type": {"type": "string", "enum": [event_type.value]}}
        properties |= {name: schemas[name] for name in sorted(fields - {"type"})}
        example: dict[str, Any] = {name: properties[name]["example"] for name in properties if "example" in properties[name]}
        example["type"] = event_type.value
        components[component_name(event_type)] = {
            "type": "object",
            "description": _description(event_type),
            "properties": properties,
            "required": _required(event_type, fields),
            "additionalProperties": False,
            "example": {name: example[name] for name in ["id", "type", *sorted(fields - {"id", "type"})] if name in example},
        }
    return components


def cloudevent_component() -> dict[str, Any]:
    """The CloudEvent as `usage.cloudevents` reads it: the attributes, the types it maps
    onto ours, and `data` holding the type's other fields."""
    schemas = _field_schemas()
    data_fields = sorted(set().union(*EVENT_FIELDS.values()) - ce.FROM_ATTRIBUTES)
    types = [ce.cloudevent_type(t) for t in EventType.values] + list(EventType.values)
    return {
        "type": "object",
        "description": (
            "A CloudEvents 1.0 event in the JSON format, read as the native event its type names: "
            "`subject` is the resource, `time` the timestamp, `data` the type's other fields (those of "
            "the native event of that type: `organization`, `product`, `kind`, `name` of a created "
            "event, `product` of resized and add-on events, `metric` and `quantity` of a metered one). "
            "Deduplicated on (source, id). Extension attributes (lower-case letters and digits; a "
            "string, boolean or integer) are allowed and not used; `data_base64` is refused."),
        "properties": {
            "specversion": {"type": "string", "enum": [ce.SPECVERSION]},
            "id": _text("The event's id; the same (source, id) again within the dedup window is `duplicate`.",
                        example="evt_01HQ3Z"),
            "source": {"type": "string", "format": "uri-reference", "minLength": 1,
                       "maxLength": ce.MAX_SOURCE_LENGTH, "example": "/platform/eu-1",
                       "description": "Who sent it (a URI-reference); with `id`, the dedup key."},
            "type": {"type": "string", "enum": types, "example": ce.cloudevent_type(EventType.STARTED),
                     "description": (f"`{ce.TYPE_PREFIX}<type>` (or the bare type) of a native event type.")},
            "subject": {**schemas["resource"], "description": "The resource (its external id)."},
            "time": {**schemas["timestamp"], "description": (
                "When it happened (RFC 3339 with a time zone); the native timestamp's limits apply.")},
            "datacontenttype": {"type": "string", "example": "application/json",
                                "description": "A JSON media type, if given."},
            "dataschema": {"type": "string", "format": "uri", "description": "Not used."},
            "data": {
                "type": "object",
                "properties": {name: schemas[name] for name in data_fields},
                "additionalProperties": False,
                "description": "The type's fields beyond id, type, resource and timestamp.",
            },
        },
        "required": ["specversion", "id", "source", "type", "subject", "time"],
        "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}]},
        "example": {
            "specversion": ce.SPECVERSION, "id": "evt_01HQ3Z", "source": "/platform/eu-1",
            "type": ce.cloudevent_type(EventType.METERED), "subject": "srv-42", "time": EXAMPLE_TIMESTAMP,
            "datacontenttype": "application/json", "data": {"metric": "egress-gb", "quantity": "12.5"},
        },
    }


def document_event_types(result, generator, request, public):
    """Postprocessing hook: the event components and the batch's items as `oneOf` them."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    batch = schemas.get(BATCH_COMPONENT)
    if batch is None:
        raise LookupError(f"{BATCH_COMPONENT} is not in the schema: POST /events changed its request serializer.")
    components = event_components()
    schemas.update(components)
    schemas[CLOUDEVENT_COMPONENT] = cloudevent_component()
    batch["properties"]["events"]["items"] = {
        "oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in components],
        "discriminator": {
            "propertyName": "type",
            "mapping": {t.value: f"#/components/schemas/{component_name(t)}" for t in EventType},
        },
    }
    return result
