"""CloudEvents 1.0 in: the JSON event format (structured mode, `application/cloudevents+json`,
and the batch format, `application/cloudevents-batch+json`) read onto our native events.

A CloudEvent is checked in two steps, as a native event is (`usage.ingest`):

1. its identity (`identity`): an object with `specversion` "1.0", `id` and `source`.
   (source, id) is what the spec says identifies an event, so it is the dedup key
   (`dedup_digest`); an identity seen before is `duplicate` whatever the rest says;
2. the rest (`to_native`): the attributes are mapped onto a native event dict, which then
   goes through the same checks as one sent natively (`usage.ingest._parse`):

   | CloudEvents        | native                                                      |
   |--------------------|-------------------------------------------------------------|
   | `id`               | `id` (1 to 200 characters)                                  |
   | `source`           | stored beside it (`UsageEvent.source`); with `id` the dedup key |
   | `type`             | `type`: `com.cloudbill.resource.<native type>` or the bare native type |
   | `subject`          | `resource` (the resource's external id); required           |
   | `time`             | `timestamp` (RFC 3339); required                            |
   | `data`             | the type's other fields (`organization`, `product`, `kind`, `name`, `metric`, `quantity`), a JSON object |
   | `datacontenttype`  | absent or a JSON media type (`application/json`, `…+json`)  |
   | `dataschema`       | a URI, not used                                             |
   | extensions         | lower-case ASCII letters and digits, a string, boolean or integer value; not used |

A reason names the CloudEvents attribute (`subject:`, `time:`, `data.quantity:`), not the
native field it was mapped onto (`reason`). A null attribute is an absent one (JSON format
§ 2.4). `data_base64` (binary data) is refused: every event's data here is JSON.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from usage.models import EventType

SPECVERSION = "1.0"
TYPE_PREFIX = "com.cloudbill.resource."
MAX_SOURCE_LENGTH = 500
INTEGER_RANGE = (-(2 ** 31), 2 ** 31 - 1)  # the spec's Integer

CONTEXT = frozenset({"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema"})
DATA_MEMBERS = frozenset({"data", "data_base64"})
# Native fields that come from attributes, never from `data`.
FROM_ATTRIBUTES = frozenset({"id", "type", "resource", "timestamp"})
_RENAMED = {"resource": "subject", "timestamp": "time"}

_NAME = re.compile(r"^[a-z0-9]+$")
# RFC 3339 date-time (a time zone is required; the T and Z may be lower case).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# RFC 3986 URI-reference: only its characters and percent-encodings; a scheme, if any,
# starts with a letter; at most one fragment.
_URI_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_JSON_MEDIA = re.compile(r"^(application|text)/([a-zA-Z0-9\-.]+\+)?json(\s*;.*)?$")


class NotACloudEvent(Exception):
    """The item is refused; `event_id` and `source` are what can be echoed (or None)."""

    def __init__(self, reason: str, event_id: str | None = None, source: str | None = None):
        super().__init__(reason)
        self.event_id = event_id
        self.source = source


def cloudevent_type(native: str) -> str:
    return f"{TYPE_PREFIX}{native}"


def is_uri_reference(value: str) -> bool:
    if not _URI_CHARS.match(value) or value.count("#") > 1:
        return False
    head = re.split(r"[/?#]", value, maxsplit=1)[0]
    if ":" in head:
        return bool(_SCHEME.match(head.split(":", 1)[0]))
    return True


def dedup_digest(event_id: str, source: str | None = None) -> str:
    """The dedup key of a native id or of a CloudEvent's (source, id): md5 as 32 hex
    digits, which PostgreSQL's uuid type reads as it is (no uuid object: ~2 µs an event).

    A native id's is `md5(id)`, as PostgreSQL's `md5(text)::uuid` wrote it before. A
    CloudEvent's is md5 of its source's UTF-8, a NUL byte and its id's UTF-8: no native
    id contains a NUL (it is refused) and no source does, so the two kinds of key hash
    different byte strings, and two (source, id) pairs the same bytes only if they are
    the same pair."""
    raw = event_id.encode() if source is None else source.encode() + b"\x00" + event_id.encode()
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


def _present(raw: dict, name: str) -> Any:
    return raw.get(name)  # a null attribute is an absent one


def _string(raw: dict, name: str, storable: Callable[[str], bool]) -> str:
    value = _present(raw, name)
    if value is None:
        raise ValueError(f"{name}: this attribute is required.")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: must be a non-empty string.")
    if not storable(value):
        raise ValueError(f"{name}: contains a NUL character or invalid Unicode.")
    return value


def identity(raw: object, *, max_id_length: int, storable: Callable[[str], bool]) -> tuple[str, str]:
    """(id, source) of a CloudEvent, or NotACloudEvent: not an object, a specversion
    other than "1.0", an id or source missing, not a non-empty string, too long."""
    if not isinstance(raw, dict):
        raise NotACloudEvent("each event must be a CloudEvent (a JSON object).")
    event_id = raw.get("id")
    source = raw.get("source")
    echo_id = event_id if isinstance(event_id, str) and storable(event_id) else None
    echo_source = source if isinstance(source, str) and storable(source) else None
    specversion = _present(raw, "specversion")
    if specversion is None:
        raise NotACloudEvent(f"specversion: this attribute is required (\"{SPECVERSION}\").", echo_id, echo_source)
    if specversion != SPECVERSION:
        raise NotACloudEvent(f"specversion: must be \"{SPECVERSION}\" (CloudEvents 1.0).", echo_id, echo_source)
    try:
        event_id = _string(raw, "id", storable)
        source = _string(raw, "source", storable)
    except ValueError as exc:
        raise NotACloudEvent(str(exc), echo_id, echo_source) from None
    if len(event_id) > max_id_length:
        raise NotACloudEvent(f"id: must be a string of 1 to {max_id_length} characters.", None, echo_source)
    if len(source) > MAX_SOURCE_LENGTH or not is_uri_reference(source):
        raise NotACloudEvent(f"source: must be a URI-reference of 1 to {MAX_SOURCE_LENGTH} characters.",
                             event_id, None)
    return event_id, source


def to_native(raw: dict, event_fields: dict[str, frozenset[str]], common_fields: frozenset[str]) -> dict:
    """The native event a CloudEvent stands for (its identity already checked); ValueError
    with the reason when an attribute is wrong."""
    type_ = _present(raw, "type")
    if not isinstance(type_, str) or not type_:
        raise ValueError("type: this attribute is required (a non-empty string).")
    native_type = type_.removeprefix(TYPE_PREFIX)
    if native_type not in EventType.values:
        raise ValueError(f"type: must be {TYPE_PREFIX}<type> (or the bare type), the type one of "
                         f"{', '.join(sorted(EventType.values))}.")
    for name, value in raw.items():
        if name in CONTEXT or name in DATA_MEMBERS or value is None:
            continue
        if not _NAME.match(name):
            raise ValueError(f"{name}: not a CloudEvents attribute name (lower-case ASCII letters and digits).")
        if not (isinstance(value, str | bool) or (
                isinstance(value, int) and INTEGER_RANGE[0] <= value <= INTEGER_RANGE[1])):
            raise ValueError(f"{name}: an extension attribute must be a string, a boolean or a 32-bit integer.")
    for name in ("subject", "datacontenttype", "dataschema"):
        value = _present(raw, name)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{name}: must be a non-empty string.")
    content_type = _present(raw, "datacontenttype")
    if content_type is not None and not _JSON_MEDIA.match(content_type):
        raise ValueError("datacontenttype: only JSON data is taken (application/json).")
    dataschema = _present(raw, "dataschema")
    if dataschema is not None and not is_uri_reference(dataschema):
        raise ValueError("dataschema: must be a URI.")
    if _present(raw, "data_base64") is not None:
        raise ValueError("data_base64: binary data is not taken; send the fields as a JSON object in data.")
    subject = _present(raw, "subject")
    if subject is None:
        raise ValueError("subject: this attribute is required (the resource's id).")
    time = _present(raw, "time")
    if time is None:
        raise ValueError("time: this attribute is required (RFC 3339, when it happened).")
    if not isinstance(time, str) or not _RFC3339.match(time):
        raise ValueError("time: must be an RFC 3339 timestamp with a time zone (e.g. 2026-03-01T10:17:00Z).")
    data = _present(raw, "data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"data: must be a JSON object with the fields of a {native_type} event.")
    allowed = event_fields.get(native_type, common_fields) - FROM_ATTRIBUTES
    unknown = [name for name in data if name not in allowed]
    if unknown:
        raise ValueError(f"{', '.join('data.' + n for n in sorted(unknown))}: unknown field for a {native_type} event.")
    native = dict(data)
    native.update({"id": raw["id"], "type": native_type, "resource": subject, "timestamp": time.upper()})
    return native


def reason(native_reason: str) -> str:
    """A native reason in CloudEvents terms: `resource:` is `subject:`, `timestamp:`
    `time:`, a field of `data` `data.<name>:`."""
    name, sep, rest = native_reason.partition(":")
    if not sep or " " in name or "," in name:
        return native_reason
    if name in _RENAMED:
        return f"{_RENAMED[name]}:{rest}"
    if name in ("id", "type") or name in CONTEXT:
        return native_reason
    return f"data.{name}:{rest}"
