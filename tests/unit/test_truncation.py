"""Truncation: the request's fields resolved against the model's default, and cutting at the
start or the end of texts, token ids and over-long characters."""

from __future__ import annotations

import pytest

from embedserve.errors import InvalidRequest
from embedserve.input_checks import char_checked, checked_token_ids
from embedserve.models import ModelSpec
from embedserve.tokenization import TextTokenizer
from embedserve.truncation import Truncation, from_tei, resolve_truncation


@pytest.mark.parametrize(
    ("mode", "k", "default", "expected"),
    [
        (None, None, "NONE", Truncation()),
        (None, None, "END", Truncation(256)),
        (None, None, "START", Truncation(256, keep_end=True)),
        ("NONE", None, "END", Truncation()),
        ("END", None, "NONE", Truncation(256)),
        ("START", None, "NONE", Truncation(256, keep_end=True)),
        (None, -1, "NONE", Truncation(256)),
        (None, 10, "START", Truncation(10)),  # k alone keeps the first k, as vLLM does
        ("START", 10, "NONE", Truncation(10, keep_end=True)),
        ("END", 10, "NONE", Truncation(10)),
    ],
)
def test_resolve(mode: str | None, k: int | None, default: str, expected: Truncation) -> None:
    assert resolve_truncation(mode, k, 256, default) == expected


@pytest.mark.parametrize(
    ("mode", "k", "message"),
    [
        ("NONE", -1, "send one"),
        ("MIDDLE", None, "NONE, END, START"),
        ("end", None, "NONE, END, START"),
        (None, 0, "at least 1"),
        ("END", 300, "more than the model maximum"),
    ],
)
def test_resolve_refuses(mode: str | None, k: int | None, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        resolve_truncation(mode, k, 256, "NONE")


def test_tei_booleans() -> None:
    assert from_tei(False, None) == from_tei(False, "left") == "NONE"
    assert from_tei(True, None) == from_tei(True, "right") == from_tei(True, "Right") == "END"
    assert from_tei(True, "left") == from_tei(True, "Left") == "START"


def test_tokenizer_keeps_the_start_or_the_end_and_the_special_tokens(
    bundled_spec: ModelSpec,
) -> None:
    tokenizer = TextTokenizer(bundled_spec)
    text = "one two three four five six seven"
    (full,) = tokenizer.encode([text])
    (start,) = tokenizer.encode([text], truncate_to=5)
    (end,) = tokenizer.encode([text], truncate_to=5, keep_end=True)
    assert start == [full[0], *full[1:4], full[-1]]  # [CLS] one two three [SEP]
    assert end == [full[0], *full[-4:-1], full[-1]]  # [CLS] five six seven [SEP]


def test_token_ids_and_characters_are_cut_at_the_kept_end(bundled_spec: ModelSpec) -> None:
    ids = [[101, 1, 2, 3, 4, 102], [101, 7, 102]]
    assert checked_token_ids(ids, bundled_spec, 1000, 3) == [[101, 1, 2], [101, 7, 102]]
    assert checked_token_ids(ids, bundled_spec, 1000, 3, keep_end=True) == [
        [3, 4, 102],
        [101, 7, 102],
    ]
    texts = ["abcdefghij", "xy"]
    assert char_checked(texts, 4, 2) == ["abcd", "xy"]
    assert char_checked(texts, 4, 2, keep_end=True) == ["ghij", "xy"]
