"""Pydantic models of the HTTP edge (OpenAI field order) and their translation to engine params."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from embedserve.engine import EmbedParams

EmbeddingInput = StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]


class EmbeddingRequest(BaseModel):
    """Body of `POST /v1/embeddings`; unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    input: EmbeddingInput = Field(
        description="a string, a list of strings, a list of token ids, or a list of token-id lists"
    )
    model: StrictStr | None = Field(
        default=None, description="served model id or alias; optional when one model is served"
    )
    encoding_format: Literal["float", "base64"] | None = Field(
        default=None, description="`float` (default) or `base64` (little-endian float32)"
    )
    dimensions: StrictInt | None = Field(
        default=None, description="output size: the native size, or less for matryoshka models"
    )
    user: StrictStr | None = Field(default=None, description="accepted, does not affect results")
    truncate_prompt_tokens: StrictInt | None = Field(
        default=None, description="-1: truncate to the model maximum; k >= 1: keep k tokens"
    )
    additional_data: Any = Field(default=None, description="echoed back unchanged (vLLM)")
    metadata: dict[StrictStr, StrictStr] | None = Field(
        default=None, description="accepted (gateways send it), not used for inference"
    )

    def to_params(self) -> EmbedParams:
        """Translate once into engine terms."""
        value = self.input
        common: dict[str, Any] = {
            "model": self.model,
            "dimensions": self.dimensions,
            "truncate_prompt_tokens": self.truncate_prompt_tokens,
        }
        if isinstance(value, str):
            return EmbedParams(texts=[value], **common)
        if value and isinstance(value[0], int):
            return EmbedParams(token_ids=[value], **common)
        if value and isinstance(value[0], list):
            return EmbedParams(token_ids=value, **common)
        return EmbedParams(texts=value, **common)  # type: ignore[arg-type]


class EmbeddingObject(BaseModel):
    """One vector of the response."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    """Tokens fed to the model, special tokens included."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    """Body of a successful `POST /v1/embeddings` (documented; built directly for speed)."""

    object: Literal["list"] = "list"
    data: list[EmbeddingObject]
    model: str
    usage: Usage
    additional_data: Any = None


class TokenizeRequest(BaseModel):
    """Body of `POST /tokenize` (`prompt` is accepted as vLLM's name for `input`)."""

    model_config = ConfigDict(extra="ignore")

    input: StrictStr | list[StrictStr] | None = None
    prompt: StrictStr | list[StrictStr] | None = None
    model: StrictStr | None = None
    add_special_tokens: StrictBool = True


class ErrorDetail(BaseModel):
    """The OpenAI error object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """The OpenAI error envelope, used for every non-2xx response."""

    error: ErrorDetail
