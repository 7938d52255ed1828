"""Wire encodings of vectors: how the rows of a float32 matrix become `embedding` values.
Every encoding a client can ask for (`encoding_format`) is here, and only here."""

from __future__ import annotations

import base64
import typing
from typing import Any, Literal

from embedserve.arrays import FloatArray
from embedserve.output_dtypes import wire_bytes

EncodingFormat = Literal["float", "base64"]
ENCODINGS: tuple[str, ...] = typing.get_args(EncodingFormat)


def to_base64(vector: FloatArray) -> str:
    """Standard base64 of the little-endian float32 bytes (what the openai SDK decodes)."""
    return base64.b64encode(vector.astype("<f4", copy=False).tobytes()).decode("ascii")


def encode_rows(vectors: Any, encoding: str | None, dtype: str = "float32") -> list[Any]:
    """One wire value per row: numpy rows for `float` (orjson writes them directly, as JSON
    numbers, integers for the packed dtypes) or base64 of the row's little-endian bytes in
    its `output_dtype`."""
    if encoding == "base64":
        return [base64.b64encode(wire_bytes(row, dtype)).decode("ascii") for row in vectors]
    return list(vectors)
