"""What a request asks to do with inputs longer than the model reads: refuse them (`NONE`),
keep their start (`END` is cut), keep their end (`START` is cut) or embed all of them in
windows pooled into one vector (`CHUNK`). From Cohere's `truncate`,
TEI's boolean `truncate` with `truncation_direction`, vLLM's `truncate_prompt_tokens`, and the
model's default (`--truncate`)."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass

from embedserve.errors import InvalidRequest, quoted
from embedserve.input_checks import truncation_limit
from embedserve.settings.model import TruncateMode

TRUNCATE_MODES: tuple[str, ...] = typing.get_args(TruncateMode)


@dataclass(frozen=True)
class Truncation:
    """`limit`: tokens kept per input (None: refuse longer inputs); `keep_end`: cut the start."""

    limit: int | None = None
    keep_end: bool = False
    chunk_overlap: int | None = None  # CHUNK: windows of the model's length sharing this many

    @property
    def chunked(self) -> bool:
        """One vector per input from windows over all of it."""
        return self.chunk_overlap is not None


def from_tei(truncate: bool, direction: str | None) -> str:
    """TEI's `truncate` and `truncation_direction` (`right`: cut the end) as a mode."""
    if not truncate:
        return "NONE"
    return "START" if (direction or "right").lower() == "left" else "END"


def resolve_truncation(
    mode: str | None,
    truncate_prompt_tokens: int | None,
    max_length: int,
    default: str,
    chunk_overlap: int = 0,
) -> Truncation:
    """The request's truncation: `mode` and `truncate_prompt_tokens` (which sets how many
    tokens are kept, at the end `mode` says), else the model's default mode."""
    if mode is not None and mode not in TRUNCATE_MODES:
        raise InvalidRequest(
            f"`truncate` must be one of {', '.join(TRUNCATE_MODES)}, got {quoted(mode)}",
            param="truncate",
        )
    limit = truncation_limit(truncate_prompt_tokens, max_length)
    if limit is not None:
        if mode in ("NONE", "CHUNK"):
            raise InvalidRequest(
                f"`truncate` is {mode} but `truncate_prompt_tokens` asks to truncate; send one",
                param="truncate",
            )
        return Truncation(limit, keep_end=mode == "START")
    chosen = mode or default
    if chosen == "NONE":
        return Truncation()
    if chosen == "CHUNK":
        return Truncation(chunk_overlap=chunk_overlap)
    return Truncation(max_length, keep_end=chosen == "START")


def split_windows(ids: Sequence[int], window: int, overlap: int) -> list[list[int]]:
    """`ids` in windows of at most `window`, each sharing `overlap` ids with the previous one
    (token-id inputs: fed as given, no special tokens added)."""
    if len(ids) <= window:
        return [list(ids)]
    windows, start = [], 0
    while True:
        windows.append(list(ids[start : start + window]))
        if start + window >= len(ids):
            return windows
        start += window - overlap
