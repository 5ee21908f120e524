"""What a key and a value may be, and the prefix bound listing relies on."""

from __future__ import annotations

import pytest

from promptlogic.context.bulk import parse_upload
from promptlogic.context.service import prefix_bound
from promptlogic.context.values import (
    MAX_VALUE_BYTES,
    MAX_VALUE_DEPTH,
    ValueProblem,
    encode_value,
    key_problem,
)


@pytest.mark.parametrize("key", ["a", "ada@example.com", "Zoë", "in space", "%_", "🎉", "k" * 200])
def test_good_keys(key):
    assert key_problem(key) is None


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("k" * 201, "201 characters"),
        ("a/b", "`/`"),
        ("a\x00", "control"),
        ("a\x7f", "control"),
        ("a\x9f", "control"),
        ("a\ud800", "surrogate"),
        (" a", "whitespace"),
        ("a\u2003", "whitespace"),
    ],
)
def test_bad_keys_say_why(key, reason):
    problem = key_problem(key)
    assert problem is not None
    assert reason in problem


def test_a_value_is_encoded_compactly_with_unicode_as_is():
    assert encode_value({"name": "Zoë", "n": [1, 2.5, None]}) == '{"name":"Zoë","n":[1,2.5,null]}'


def test_the_size_limit_counts_utf8_bytes():
    fits = {"t": "é" * ((MAX_VALUE_BYTES - len('{"t":""}')) // 2)}
    assert len(encode_value(fits).encode()) <= MAX_VALUE_BYTES
    with pytest.raises(ValueProblem) as caught:
        encode_value({"t": "é" * (MAX_VALUE_BYTES // 2)})
    assert caught.value.too_large


def test_depth_is_limited_without_recursion():
    value: dict = {}
    inner = value
    for _ in range(MAX_VALUE_DEPTH - 1):
        inner["x"] = {}
        inner = inner["x"]
    encode_value(value)
    inner["x"] = {}
    with pytest.raises(ValueProblem, match="deeper"):
        encode_value(value)
    deep: list = []
    for _ in range(100_000):  # would overflow a recursive walk
        deep = [deep]
    with pytest.raises(ValueProblem, match="deeper"):
        encode_value({"deep": deep})


@pytest.mark.parametrize(
    "value", [{"x": float("nan")}, {"x": [float("inf")]}, {"a\x00": 1}, {"x": "\udc00"}]
)
def test_unstorable_values_are_refused(value):
    with pytest.raises(ValueProblem) as caught:
        encode_value(value)
    assert not caught.value.too_large


@pytest.mark.parametrize(
    ("prefix", "bound"),
    [
        ("a", "b"),
        ("ab", "ac"),
        ("a\U0010ffff", "b"),
        ("\U0010ffff\U0010ffff", None),
        ("\ud7ff", "\ue000"),
        ("100%", "100&"),
    ],
)
def test_prefix_bound(prefix, bound):
    assert prefix_bound(prefix) == bound


def test_parse_upload_reports_a_lone_surrogate_in_a_key():
    upload = parse_upload(b'{"key": "a\\ud800", "value": {}}\n{"key": "ok", "value": {}}')
    assert upload.rows == [("ok", "{}")]
    assert [error["line"] for error in upload.errors] == [1]
