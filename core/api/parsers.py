"""A JSON parser with a nesting limit.

Python's json module recurses once per level: a body nested a few thousand levels deep
raised RecursionError, a 500. No request of this API nests more than a handful of levels,
so anything deeper than MAX_DEPTH is refused as a parse error (400).

The body is parsed by orjson first (C, ~10x faster than json.loads and with no Python
recursion; it refuses nesting beyond 1,024 levels itself) and its result's depth is
checked by walking the containers, not the text. Anything orjson refuses (a lone
surrogate escape, NaN) or may read differently (any float: orjson reads an integer
beyond 64 bits as one, json.loads as an int) goes the old way: json.loads after the
depth is counted on the raw text, skipping string contents, so every body gets exactly
the answer it got before; only the common case is faster."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def json_depth_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


class _SlowPath(Exception):
    """orjson's value may differ from json.loads' (a float: it turns an integer beyond 64
    bits into one), so json.loads decides."""


def value_depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed JSON value nests lists and objects deeper than `limit` (the same
    depth json_depth_exceeds counts on the text). Only containers are visited."""
    return _walk(value, limit, floats_ok=True)


def _walk(value: Any, limit: int, *, floats_ok: bool) -> bool:
    if type(value) is float and not floats_ok:
        raise _SlowPath
    if type(value) is not dict and type(value) is not list:
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if type(node) is dict else node:
            kind = type(child)
            if kind is dict or kind is list:  # orjson makes no subclasses
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
            elif kind is float and not floats_ok:
                raise _SlowPath
    return False


def loads_bounded(raw: bytes | str) -> Any:
    """json.loads that refuses nesting over MAX_DEPTH; raises ValueError on bad input."""
    try:
        value = orjson.loads(raw)
        too_deep = _walk(value, MAX_DEPTH, floats_ok=False)
    except (orjson.JSONDecodeError, _SlowPath):
        pass  # the slow path below gives the answer json.loads always gave
    else:
        if too_deep:
            raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels.")
        return value
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    if json_depth_exceeds(text):
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels.")
    return json.loads(text)


class BoundedJSONParser(JSONParser):
    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            return loads_bounded(stream.read().decode(encoding))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


class CloudEventParser(BoundedJSONParser):
    """CloudEvents' structured mode: one event in the JSON event format."""

    media_type = "application/cloudevents+json"


class CloudEventBatchParser(BoundedJSONParser):
    """CloudEvents' JSON batch format: an array of events."""

    media_type = "application/cloudevents-batch+json"
