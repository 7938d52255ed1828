"""Request bodies (pydantic, OpenAI field order) and their translation to engine params.
Response bodies are in `responses`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, WithJsonSchema

from embedserve.encodings import EncodingFormat
from embedserve.engine import EmbedParams
from embedserve.errors import InvalidRequest
from embedserve.output_dtypes import OutputDtype
from embedserve.prompts import InputType
from embedserve.settings.model import TruncateMode
from embedserve.truncation import from_tei

# Constraints the engine enforces with its own error codes (`empty_input`, `invalid_token_id`,
# `invalid_dimensions`, ...). Declaring them as pydantic constraints would turn those answers into
# generic `invalid_request` ones, so they are stated in the JSON Schema only (`WithJsonSchema`).
_NULL: dict[str, Any] = {"type": "null"}
_TEXT: dict[str, Any] = {"type": "string", "minLength": 1}
_TEXTS: dict[str, Any] = {"type": "array", "minItems": 1, "items": _TEXT}
_TOKENS = {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}}
INPUT_SCHEMA: dict[str, Any] = {
    "anyOf": [_TEXT, _TEXTS, _TOKENS, {"type": "array", "minItems": 1, "items": _TOKENS}]
}

EmbeddingInput = Annotated[
    StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]],
    WithJsonSchema(INPUT_SCHEMA),
]
TextInput = Annotated[
    StrictStr | list[StrictStr] | None, WithJsonSchema({"anyOf": [_TEXT, _TEXTS, _NULL]})
]


class EmbeddingRequest(BaseModel):
    """Body of `POST /v1/embeddings`; unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    input: EmbeddingInput = Field(
        description="a string, a list of strings, a list of token ids, or a list of token-id lists"
    )
    model: StrictStr | None = Field(
        default=None, description="served model id or alias; optional when one model is served"
    )
    encoding_format: EncodingFormat | None = Field(
        default=None, description="`float` (default) or `base64` (little-endian float32)"
    )
    dimensions: Annotated[
        StrictInt | None, WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, _NULL]})
    ] = Field(
        default=None,
        description="output size, 1 to the native size; below it only for matryoshka models",
    )
    output_dtype: OutputDtype | None = Field(
        default=None,
        description="float32 (default), float16, bfloat16; binary / ubinary: sign bits packed 8 "
        "per byte (int8 offset by -128 / uint8), so 384 dimensions give 48 values (Voyage). "
        "With base64: the little-endian bytes of that type",
    )
    embed_dtype: Literal["float32", "float16", "bfloat16"] | None = Field(
        default=None, description="vLLM's name for the float `output_dtype`s"
    )
    truncate: TruncateMode | StrictBool | None = Field(
        default=None,
        description="over-long inputs: NONE (400), END (cut the end), START (cut the start); "
        "TEI's booleans too (true: cut at `truncation_direction`); null: the model's default "
        "(--truncate). With `truncate_prompt_tokens`: the end it cuts",
    )
    truncation_direction: Literal["right", "left", "Right", "Left"] | None = Field(
        default=None, description="TEI: with `truncate: true`, right cuts the end, left the start"
    )
    user: StrictStr | None = Field(default=None, description="accepted, does not affect results")
    input_type: InputType | None = Field(
        default=None,
        description="query / document (also search_query, search_document, classification, "
        "clustering): the model's prompt for that kind of input; a kind the model has no "
        "prompt for adds none; null: the model's default prompt (Voyage, Cohere)",
    )
    prompt_name: StrictStr | None = Field(
        default=None,
        description="any prompt the model declares (see `prompts` in /v1/models); must agree "
        "with `input_type` when both are sent",
    )
    normalize: StrictBool | None = Field(
        default=None,
        description="false: the pooled vector before any normalisation (TEI); null: the "
        "model's own behaviour",
    )
    truncate_prompt_tokens: Annotated[
        StrictInt | None,
        WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, {"const": -1}, _NULL]}),
    ] = Field(
        default=None,
        description="-1: truncate to the model maximum; k >= 1 (up to it): keep the first k tokens",
    )
    additional_data: Any = Field(
        default=None,
        description="any JSON (at most 10000 values, 32 levels deep), echoed back unchanged (vLLM)",
    )
    metadata: dict[StrictStr, StrictStr] | None = Field(
        default=None, description="accepted (gateways send it), not used for inference"
    )
    # Documentation only: the route merges `extra_body` into the body before validation.
    extra_body: dict[str, Any] | None = Field(
        default=None,
        description="its keys are applied as if sent at the top level (`input` included); a key "
        "given both ways with different values is an error",
    )

    def to_params(self) -> EmbedParams:
        """Translate once into engine terms."""
        if self.output_dtype and self.embed_dtype and self.output_dtype != self.embed_dtype:
            raise InvalidRequest(
                "`output_dtype` and `embed_dtype` (vLLM's name) disagree; send one",
                param="output_dtype",
            )
        value = self.input
        common: dict[str, Any] = {
            "model": self.model,
            "dimensions": self.dimensions,
            "truncate_prompt_tokens": self.truncate_prompt_tokens,
            "truncate": from_tei(self.truncate, self.truncation_direction)
            if isinstance(self.truncate, bool)
            else self.truncate,
            "output_dtype": self.output_dtype or self.embed_dtype,
            "input_type": self.input_type,
            "prompt_name": self.prompt_name,
            "normalize": self.normalize,
        }
        if isinstance(value, str):
            return EmbedParams(texts=[value], **common)
        if value and isinstance(value[0], int):
            return EmbedParams(token_ids=[value], **common)
        if value and isinstance(value[0], list):
            return EmbedParams(token_ids=value, **common)
        return EmbedParams(texts=value, **common)  # type: ignore[arg-type]


class TokenizeRequest(BaseModel):
    """Body of `POST /tokenize` (`prompt` is accepted as vLLM's name for `input`)."""

    # `input` when given (not null), else `prompt`, is read and checked; the other is ignored.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "anyOf": [
                {"required": ["input"], "properties": {"input": {"not": _NULL}}},
                {
                    "required": ["prompt"],
                    "properties": {"input": _NULL, "prompt": {"anyOf": [_TEXT, _TEXTS]}},
                },
            ]
        },
    )

    input: TextInput = Field(default=None, description="a string or a list of strings")
    prompt: Annotated[
        StrictStr | list[StrictStr] | None,
        WithJsonSchema({}),  # its shape is checked only when it is read: see the `anyOf`
    ] = Field(default=None, description="vLLM's name for `input`, read when `input` is absent")
    model: StrictStr | None = Field(
        default=None, description="served model id or alias; optional when one model is served"
    )
    add_special_tokens: StrictBool = Field(default=True, description="count [CLS]/[SEP] & co.")
    input_type: InputType | None = Field(
        default=None, description="as in /v1/embeddings: the prompt's tokens are included"
    )
    prompt_name: StrictStr | None = Field(default=None, description="as in /v1/embeddings")
