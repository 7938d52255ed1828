"""What goes into the engine and what comes out of it (no HTTP types)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EmbedParams:
    """One embeddings request in engine terms: texts or token ids, never both."""

    texts: Sequence[str] | None = None
    token_ids: Sequence[Sequence[int]] | None = None
    model: str | None = None
    dimensions: int | None = None
    truncate_prompt_tokens: int | None = None
    truncate: str | None = None  # NONE / END / START; None: the model's default
    input_type: str | None = None  # query / document / ... (see `prompts.INPUT_TYPES`)
    prompt_name: str | None = None  # any prompt the model declares
    normalize: bool | None = None  # None: the model's; False: the pooled vector as it is
    output_dtype: str | None = None  # float32 (None) / float16 / bfloat16 / int8 / ... / ubinary
    output_dtypes: tuple[str, ...] = ()  # several at once (Cohere's `embedding_types`)


@dataclass(frozen=True)
class EmbedResult:
    """Vectors in input order, the model id that answered, and the tokens fed to the model."""

    model: str
    vectors: Any  # (n, dim) float32, or the request's `output_dtype`
    prompt_tokens: int
    dtype: str = "float32"
    by_dtype: dict[str, Any] = field(default_factory=dict)  # every dtype asked for -> vectors


@dataclass(frozen=True)
class TokenizeResult:
    """Token ids per input for `/tokenize`."""

    model: str
    tokens: list[list[int]]
    max_model_len: int
