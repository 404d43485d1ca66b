"""core.api.parsers: orjson first, json.loads for whatever orjson refuses, and the same
depth limit and the same parsed value either way."""

from __future__ import annotations

import json

import pytest

from core.api.parsers import MAX_DEPTH, json_depth_exceeds, loads_bounded, value_depth_exceeds


def _nested(depth: int, *, objects: bool) -> object:
    value: object = 1
    for level in range(depth):
        value = {"a": value, "b": "x"} if objects and level % 2 else [value, "[{"]
    return value


@pytest.mark.parametrize("depth", [1, 2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 100])
@pytest.mark.parametrize("objects", [False, True])
def test_the_depth_on_the_parsed_value_is_the_depth_on_the_text(depth, objects):
    value = _nested(depth, objects=objects)
    assert value_depth_exceeds(value) == json_depth_exceeds(json.dumps(value)) == (depth > MAX_DEPTH)


def test_scalars_have_no_depth():
    assert not value_depth_exceeds("x") and not value_depth_exceeds(None) and not value_depth_exceeds(3)


@pytest.mark.parametrize("text", [
    '{"id": "x\\ud800", "n": 1}',  # a lone surrogate escape: orjson refuses it, json.loads does not
    '{"n": 123456789012345678901234567890}',  # beyond 64 bits
    '{"n": NaN, "m": -Infinity}',
    '[1.5, 1e400, {"big": 18446744073709551616}]',
])
def test_what_orjson_refuses_is_parsed_as_json_loads_parses_it(text):
    assert repr(loads_bounded(text)) == repr(json.loads(text))


@pytest.mark.parametrize("text", ['{"events": [{"id": "é", "q": "1.5", "x": 1.25, "t": true, "n": null}]}',
                                  '[]', '"s"'])
def test_the_common_case_parses_as_json_loads_does(text):
    assert loads_bounded(text.encode()) == json.loads(text)


@pytest.mark.parametrize("text", ["{", '{"a": 1,}', "[1] x", "\ufeff{}"])
def test_bad_json_is_a_value_error_either_way(text):
    with pytest.raises(ValueError):
        loads_bounded(text)


def test_too_deep_is_a_value_error():
    with pytest.raises(ValueError, match="nested deeper"):
        loads_bounded("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
