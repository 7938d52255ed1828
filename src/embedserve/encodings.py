"""Wire encodings of vectors: how the rows of a float32 matrix become `embedding` values.
Every encoding a client can ask for (`encoding_format`) is here, and only here."""

from __future__ import annotations

import base64
import typing
from typing import Any, Literal

from embedserve.arrays import FloatArray

EncodingFormat = Literal["float", "base64"]
ENCODINGS: tuple[str, ...] = typing.get_args(EncodingFormat)


def to_base64(vector: FloatArray) -> str:
    """Standard base64 of the little-endian float32 bytes (what the openai SDK decodes)."""
    return base64.b64encode(vector.astype("<f4", copy=False).tobytes()).decode("ascii")


def encode_rows(vectors: FloatArray, encoding: str | None) -> list[Any]:
    """One wire value per row: numpy rows for `float` (orjson writes them directly, as JSON
    numbers) or base64 strings."""
    if encoding == "base64":
        return [to_base64(row) for row in vectors]
    return list(vectors)
