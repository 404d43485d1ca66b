"""Projects and labels (issue 19, item 1): the checks both the events API and the portal
use, so a label accepted in one place is accepted in the other.

Labels follow Kubernetes' rules, slightly simplified: a key is an optional DNS-style
prefix and a slash, then a name of 1–63 characters (letters, digits, `-`, `_`, `.`,
starting and ending with a letter or digit); a value is 0–63 such characters. At most
`MAX_LABELS` labels per resource. A project is named by its slug, unique per organisation.
"""

from __future__ import annotations

import re

from django.utils.text import slugify

MAX_LABELS = 20
MAX_KEY_LENGTH = 63 + 1 + 253  # prefix/name
MAX_NAME_LENGTH = 63
MAX_VALUE_LENGTH = 63
MAX_SLUG_LENGTH = 50
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$")
_PREFIX = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]{0,48}[a-z0-9])?$")


class LabelError(ValueError):
    pass


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise LabelError("a label key must be a non-empty string.")
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _PREFIX.fullmatch(prefix)):
        raise LabelError(f"label key {key[:80]!r}: the prefix before '/' must be a lower-case DNS name.")
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise LabelError(f"label key {key[:80]!r}: 1 to {MAX_NAME_LENGTH} letters, digits, '-', '_' or '.', "
                         "starting and ending with a letter or digit.")
    return key


def check_value(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise LabelError(f"label {key[:80]!r}: the value must be a string.")
    if len(value) > MAX_VALUE_LENGTH or not _VALUE.fullmatch(value):
        raise LabelError(f"label {key[:80]!r}: the value must be at most {MAX_VALUE_LENGTH} letters, digits, "
                         "'-', '_' or '.', starting and ending with a letter or digit.")
    return value


def check_labels(labels: object) -> dict[str, str]:
    """The labels as a plain {key: value} dict, or LabelError saying what is wrong."""
    if not isinstance(labels, dict):
        raise LabelError("labels must be an object of string keys and string values.")
    if len(labels) > MAX_LABELS:
        raise LabelError(f"at most {MAX_LABELS} labels ({len(labels)} given).")
    return {check_key(k): check_value(k, v) for k, v in sorted(labels.items())}


def check_slug(slug: object) -> str:
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        raise LabelError(f"a project is named by its slug: 1 to {MAX_SLUG_LENGTH} lower-case letters, digits "
                         "and '-', starting and ending with a letter or digit.")
    return slug


def parse_label_filter(text: str) -> tuple[str, str | None]:
    """`key:value` (that value) or `key` (any value) → (key, value or None)."""
    key, sep, value = text.partition(":")
    check_key(key)
    if sep:
        check_value(key, value)
        return key, value
    return key, None


def slug_for(name: str) -> str:
    return slugify(name)[:MAX_SLUG_LENGTH].strip("-") or "project"
