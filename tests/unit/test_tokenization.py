"""Tokenization with the bundled model's tokenizer, and checks on token-id inputs."""

from __future__ import annotations

import pytest

from embedserve.errors import InvalidTokenId
from embedserve.models import ModelSpec
from embedserve.tokenization import TextTokenizer, check_token_ids

CLS, SEP = 101, 102
WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "birds")
LONG_TEXT = " ".join(WORDS[i % len(WORDS)] for i in range(300))
SHORT_TEXT = "Hello world"


@pytest.fixture(scope="module")
def tokenizer(bundled_spec: ModelSpec) -> TextTokenizer:
    return TextTokenizer(bundled_spec)


@pytest.fixture(scope="module")
def hf_long_ids(bundled_spec: ModelSpec) -> list[int]:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(bundled_spec.path))
    ids: list[int] = hf(LONG_TEXT)["input_ids"]
    return ids


def test_special_tokens_are_added(tokenizer: TextTokenizer) -> None:
    assert tokenizer.num_special_tokens == 2
    [ids] = tokenizer.encode([SHORT_TEXT])
    assert ids == [CLS, 7592, 2088, SEP]


def test_no_padding_in_a_batch(tokenizer: TextTokenizer) -> None:
    short, longer = tokenizer.encode([SHORT_TEXT, "Hello world, how are you today?"])
    assert short == [CLS, 7592, 2088, SEP]
    assert len(longer) > len(short)
    assert longer[0] == CLS
    assert longer[-1] == SEP
    assert 0 not in short
    assert 0 not in longer


def test_builtin_truncation_to_128_is_not_applied(
    tokenizer: TextTokenizer, hf_long_ids: list[int]
) -> None:
    [ids] = tokenizer.encode([LONG_TEXT])
    assert len(ids) > 128
    assert len(ids) == 302
    assert ids == hf_long_ids
    assert ids[0] == CLS
    assert ids[-1] == SEP


@pytest.mark.parametrize("k", [2, 3, 16, 128, 256])
def test_truncate_to_keeps_special_tokens(
    tokenizer: TextTokenizer, hf_long_ids: list[int], k: int
) -> None:
    [ids] = tokenizer.encode([LONG_TEXT], truncate_to=k)
    assert len(ids) == k
    assert ids[0] == CLS
    assert ids[-1] == SEP
    assert ids[:-1] == hf_long_ids[: k - 1]


def test_truncate_to_leaves_short_texts_untouched(tokenizer: TextTokenizer) -> None:
    full = tokenizer.encode([SHORT_TEXT, LONG_TEXT])
    # Exactly fits, and generous limits: nothing changes.
    assert tokenizer.encode([SHORT_TEXT], truncate_to=4) == [full[0]]
    assert tokenizer.encode([SHORT_TEXT], truncate_to=256) == [full[0]]
    assert tokenizer.encode([SHORT_TEXT, LONG_TEXT], truncate_to=1000) == full
    # In a mixed batch only the long text is cut.
    short, long_ = tokenizer.encode([SHORT_TEXT, LONG_TEXT], truncate_to=10)
    assert short == full[0]
    assert len(long_) == 10
    assert long_[-1] == SEP


def test_without_special_tokens(tokenizer: TextTokenizer, hf_long_ids: list[int]) -> None:
    assert tokenizer.encode([SHORT_TEXT], add_special_tokens=False) == [[7592, 2088]]
    [ids] = tokenizer.encode([LONG_TEXT], add_special_tokens=False)
    assert ids == hf_long_ids[1:-1]
    [cut] = tokenizer.encode([LONG_TEXT], truncate_to=7, add_special_tokens=False)
    assert cut == hf_long_ids[1:8]
    assert CLS not in cut
    assert SEP not in cut


def test_empty_batch(tokenizer: TextTokenizer) -> None:
    assert tokenizer.encode([]) == []
    assert tokenizer.encode([], truncate_to=5) == []


@pytest.mark.parametrize(
    ("bad", "inputs"),
    [
        (-1, [[1, 2], [3, -1]]),
        (30522, [[30522]]),
        (40000, [[5, 40000, 6]]),
        (2**70, [[1, 2**70]]),
        (-(2**70), [[-(2**70)]]),
        (2**63, [[2**63, 5]]),
    ],
)
def test_check_token_ids_rejects_out_of_vocabulary(bad: int, inputs: list[list[int]]) -> None:
    with pytest.raises(InvalidTokenId) as info:
        check_token_ids(inputs, vocab_size=30522)
    error = info.value
    assert error.param == "input"
    assert error.code == "invalid_token_id"
    assert f"input[{len(inputs) - 1}]" in error.message
    assert str(bad) in error.message


def test_check_token_ids_accepts_valid_ids() -> None:
    check_token_ids([[0, 1, 30521], [101, 7592, 102]], vocab_size=30522)
    check_token_ids([], vocab_size=30522)
    check_token_ids([[5]], vocab_size=6)


def test_check_token_ids_names_the_first_bad_input() -> None:
    with pytest.raises(InvalidTokenId) as info:
        check_token_ids([[1], [2, 99], [-5]], vocab_size=10)
    assert "input[1]" in info.value.message
    assert "99" in info.value.message
