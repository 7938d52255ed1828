"""Checks on one request's inputs, in order of cost: counts and kinds, characters, lengths in
tokens (no item touched), item types, vocabulary range; and the `dimensions` and truncation
values. Pure functions raising the domain errors."""

from __future__ import annotations

from collections.abc import Sequence

from embedserve.errors import (
    ContextLengthExceeded,
    EmptyInput,
    InvalidDimensions,
    InvalidRequest,
    TooManyInputs,
    TooManyTokens,
)
from embedserve.models import ModelSpec
from embedserve.tokenization import check_token_ids

INPUT_SHAPES = "a string, a list of strings, a list of token ids, or a list of token-id lists"
INPUT_SHAPES_MESSAGE = f"`input` must be {INPUT_SHAPES}; no mixed lists"


def checked_token_ids(
    inputs: Sequence[Sequence[int]],
    spec: ModelSpec,
    max_total: int,
    truncate_to: int | None,
    keep_end: bool = False,
) -> list[list[int]]:
    """Token-id inputs, truncated if asked (the last ids kept with `keep_end`), checked in
    order of cost: lengths (no item touched), then item types, then the vocabulary range."""
    if truncate_to is None:
        lists = list(inputs)
    elif keep_end:
        lists = [ids[len(ids) - truncate_to :] if len(ids) > truncate_to else ids for ids in inputs]
    else:
        lists = [ids[:truncate_to] for ids in inputs]
    check_lengths(lists, spec.max_length, max_total)
    for ids in lists:
        if ids and set(map(type, ids)) != {int}:
            raise InvalidRequest(INPUT_SHAPES_MESSAGE, param="input")
    check_token_ids(lists, spec.vocab_size)
    return [list(ids) for ids in lists]


def char_checked(
    texts: Sequence[str], max_chars: int, truncate_to: int | None, keep_end: bool = False
) -> list[str]:
    """Texts within `max_chars` characters: longer ones are cut (at the end kept by the
    truncation) when truncation was asked for (the kept tokens lie far inside the cut), else
    refused before any tokenizing."""
    for index, text in enumerate(texts):
        if len(text) > max_chars:
            if truncate_to is not None:
                return [text[-max_chars:] if keep_end else text[:max_chars] for text in texts]
            raise ContextLengthExceeded(
                f"input[{index}] has {len(text)} characters; inputs over {max_chars} characters "
                "are refused before tokenizing, as they are far longer than this model's "
                "maximum context length. Shorten or split it, or send truncate_prompt_tokens=-1 "
                "to truncate it",
                param="input",
            )
    return list(texts)


def check_inputs(
    texts: Sequence[str] | None, token_ids: Sequence[Sequence[int]] | None, max_inputs: int
) -> int:
    """The number of inputs, after checking there is one kind, some, not too many, none empty."""
    inputs: Sequence[object] | None = texts if texts is not None else token_ids
    if inputs is None or (texts is not None and token_ids is not None):
        raise InvalidRequest("give either texts or token ids", param="input")
    if len(inputs) == 0:
        raise EmptyInput("`input` must not be empty: send at least one text", param="input")
    if len(inputs) > max_inputs:
        raise TooManyInputs(
            f"{len(inputs)} inputs in one request; at most {max_inputs} are accepted. "
            "Split the request",
            param="input",
        )
    if texts is not None and set(map(type, texts)) != {str}:
        raise InvalidRequest(INPUT_SHAPES_MESSAGE, param="input")
    for index, item in enumerate(inputs):
        if isinstance(item, int) or not isinstance(item, str | list | tuple):
            raise InvalidRequest(INPUT_SHAPES_MESSAGE, param="input")
        if len(item) == 0:
            what = "an empty string" if texts is not None else "an empty token list"
            raise EmptyInput(
                f"input[{index}] is {what}; every input must have content", param="input"
            )
    return len(inputs)


def check_dimensions(dimensions: int | None, spec: ModelSpec) -> None:
    """Refuse a `dimensions` the model cannot produce (native is always accepted)."""
    if dimensions is None or dimensions == spec.dimension:
        return
    if not 1 <= dimensions <= spec.dimension:
        raise InvalidDimensions(
            f"`dimensions` must be between 1 and {spec.dimension} for this model, got {dimensions}",
            param="dimensions",
        )
    if spec.matryoshka_dimensions and dimensions not in spec.matryoshka_dimensions:
        sizes = ", ".join(str(d) for d in (*spec.matryoshka_dimensions, spec.dimension))
        raise InvalidDimensions(
            f"this model was trained for `dimensions` in {{{sizes}}}, got {dimensions}",
            param="dimensions",
        )
    if not spec.matryoshka:
        raise InvalidDimensions(
            f"this model is not matryoshka-trained, so it only produces {spec.dimension} "
            f"dimensions; omit `dimensions` or set it to {spec.dimension}",
            param="dimensions",
        )


def truncation_limit(truncate: int | None, max_length: int) -> int | None:
    """Tokens to keep per input from `truncate_prompt_tokens` (-1: the model maximum)."""
    if truncate is None:
        return None
    if truncate == -1:
        return max_length
    if truncate < 1:
        raise InvalidRequest(
            "`truncate_prompt_tokens` must be -1 (the model maximum) or at least 1, "
            f"got {truncate}",
            param="truncate_prompt_tokens",
        )
    if truncate > max_length:
        raise InvalidRequest(
            f"`truncate_prompt_tokens`={truncate} is more than the model maximum of "
            f"{max_length} tokens; use a value up to {max_length}, or -1",
            param="truncate_prompt_tokens",
        )
    return truncate


def check_lengths(token_lists: Sequence[Sequence[int]], max_length: int, max_total: int) -> int:
    """Refuse over-long inputs and requests; returns the total token count."""
    total = 0
    for index, ids in enumerate(token_lists):
        if len(ids) > max_length:
            raise ContextLengthExceeded(
                f"input[{index}] has {len(ids)} tokens, more than this model's maximum context "
                f"length of {max_length} tokens; shorten or split it, or send "
                "truncate_prompt_tokens=-1 to truncate it",
                param="input",
            )
        total += len(ids)
    if total > max_total:
        raise TooManyTokens(
            f"this request has {total} tokens, more than the {max_total} allowed in one request; "
            "split it into smaller requests",
            param="input",
        )
    return total
