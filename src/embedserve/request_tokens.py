"""The token lists one request feeds the model: its texts (with their prompt) tokenized,
truncated or cut into windows, or its token ids checked; and how windows pool back."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from embedserve.arrays import FloatArray
from embedserve.input_checks import char_checked, check_lengths, checked_token_ids
from embedserve.params import EmbedParams
from embedserve.postprocess import pool_windows
from embedserve.runner import ModelRunner
from embedserve.settings import auto
from embedserve.tokenizer_pool import TokenizerPool
from embedserve.truncation import Truncation, split_windows


@dataclass(frozen=True)
class RequestTokens:
    """What goes to the scheduler, and the tokens it counts in `usage`."""

    token_lists: list[list[int]]
    total: int
    windows_per_input: list[int] | None = None  # CHUNK: rows to pool into each input's vector

    def pooled(
        self, finish: Callable[[FloatArray], FloatArray]
    ) -> Callable[[FloatArray], FloatArray]:
        """`finish`, preceded by pooling each input's windows when the request was chunked."""
        if self.windows_per_input is None:
            return finish
        weights = [len(ids) for ids in self.token_lists]
        pool = functools.partial(pool_windows, groups=self.windows_per_input, weights=weights)
        return lambda rows: finish(pool(rows))


async def request_tokens(
    tokenizers: TokenizerPool,
    runner: ModelRunner,
    params: EmbedParams,
    cut: Truncation,
    prompt: str,
) -> RequestTokens:
    """Tokenize (texts) or check (token ids) the inputs of `params` under `cut`; lengths and
    the request's token limit are checked on what the model will be fed."""
    spec, limits = runner.spec, runner.limits
    windows: list[list[list[int]]] | None = None
    if params.texts is not None:
        max_chars = (
            auto.max_input_chars(limits, limits.max_request_tokens)
            if cut.chunked
            else runner.max_input_chars
        )
        texts = char_checked(params.texts, max_chars, cut.limit, cut.keep_end)
        if prompt:  # as sentence-transformers does
            texts = [prompt + text for text in texts]
        if cut.chunked:
            windows = await tokenizers.encode_windows(runner, texts, cut.chunk_overlap or 0)
        else:
            token_lists = await tokenizers.encode(
                runner, texts, truncate_to=cut.limit, keep_end=cut.keep_end
            )
    else:
        assert params.token_ids is not None
        if cut.chunked:
            overlap = cut.chunk_overlap or 0
            windows = [split_windows(ids, spec.max_length, overlap) for ids in params.token_ids]
            windows = [
                checked_token_ids(group, spec, limits.max_request_tokens, None) for group in windows
            ]
        else:
            token_lists = checked_token_ids(
                params.token_ids, spec, limits.max_request_tokens, cut.limit, cut.keep_end
            )
    if windows is not None:
        token_lists = [ids for group in windows for ids in group]
        total = check_lengths(token_lists, spec.max_length, limits.max_request_tokens)
        return RequestTokens(token_lists, total, [len(group) for group in windows])
    total = check_lengths(token_lists, spec.max_length, limits.max_request_tokens)
    return RequestTokens(token_lists, total)


def count_inputs(tokens: RequestTokens) -> int:
    """The number of inputs the tokens stand for."""
    if tokens.windows_per_input is not None:
        return len(tokens.windows_per_input)
    return len(tokens.token_lists)
