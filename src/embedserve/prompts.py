"""Which prompt a request's texts get: `prompt_name` (any prompt the model declares) or
`input_type` (Voyage's and Cohere's fixed vocabulary, mapped onto the model's prompt names),
else the model's default prompt."""

from __future__ import annotations

import typing
from typing import Literal

from embedserve.errors import InvalidRequest, quoted
from embedserve.models.spec import ModelSpec
from embedserve.params import EmbedParams

InputType = Literal[
    "query", "document", "search_query", "search_document", "classification", "clustering"
]
INPUT_TYPES: tuple[str, ...] = typing.get_args(InputType)
# The prompt names each input type looks for, first match wins (e5/bge: query/passage;
# sentence-transformers and Qwen3: query/document; nomic: search_query/search_document).
PROMPT_NAMES_OF: dict[str, tuple[str, ...]] = {
    "query": ("query", "search_query"),
    "search_query": ("search_query", "query"),
    "document": ("document", "passage", "search_document", "doc"),
    "search_document": ("search_document", "document", "passage", "doc"),
    "classification": ("classification",),
    "clustering": ("clustering",),
}


def input_type_mapping(spec: ModelSpec) -> dict[str, str | None]:
    """Each input type -> the model's prompt name it selects (None: no prompt)."""
    names = spec.prompt_map
    return {
        kind: next((name for name in PROMPT_NAMES_OF[kind] if name in names), None)
        for kind in INPUT_TYPES
    }


def resolve_prompt(spec: ModelSpec, input_type: str | None, prompt_name: str | None) -> str:
    """The text to prepend to each input of a request (may be '')."""
    names = spec.prompt_map
    if prompt_name is not None and prompt_name not in names:
        listing = ", ".join(sorted(names)) or "none"
        raise InvalidRequest(
            f"the model has no prompt named {quoted(prompt_name)}; its prompts: {listing}",
            param="prompt_name",
        )
    if input_type is None:
        chosen = prompt_name if prompt_name is not None else spec.default_prompt_name
        return names.get(chosen or "", "")
    mapped = input_type_mapping(spec)[input_type]
    if prompt_name is not None and prompt_name != mapped:
        selects = f"selects the prompt {mapped!r}" if mapped else "adds no prompt"
        raise InvalidRequest(
            f"`input_type` {quoted(input_type)} {selects} for this model, but `prompt_name` asks "
            f"for {quoted(prompt_name)}; send one of them",
            param="prompt_name",
        )
    return names.get(mapped or "", "")


def prompt_for(spec: ModelSpec, params: EmbedParams) -> str:
    """The prompt prepended to each text of `params`; token-id inputs take none."""
    if params.token_ids is not None:
        if params.prompt_name is not None:
            raise InvalidRequest(
                "`prompt_name` applies to text inputs; token ids are fed as given",
                param="prompt_name",
            )
        return ""
    return resolve_prompt(spec, params.input_type, params.prompt_name)
