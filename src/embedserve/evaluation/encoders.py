"""The two models MTEB evaluates: a served URL (`ServedEncoder`) and the engine in this process
(`InProcessEncoder`). Both hand MTEB's query/document prompt type on as `input_type`, embed an
empty text as a single space (servers refuse "", as OpenAI does), and show a progress bar."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.types import PromptType
from tqdm import tqdm

from embedserve.arrays import FloatArray
from embedserve.evaluation.client import EmbeddingsClient
from embedserve.library import Embedder

IN_PROCESS_CHUNK = 512  # texts per call into the engine, between progress-bar updates


def model_meta(name: str, framework: str) -> ModelMeta:
    """MTEB's record of the model: results land under `results/<name>/<revision>/`."""
    full_name = name if "/" in name else f"embedserve/{name}"
    return ModelMeta.create_empty(
        overwrites={
            "name": full_name,
            "revision": "no_revision_available",
            "similarity_fn_name": ScoringFunction.COSINE,
            "framework": [framework],
        }
    )


def input_type_of(prompt_type: PromptType | None) -> str | None:
    """MTEB's prompt type as the `input_type` embedserve, Voyage and Cohere accept."""
    if prompt_type is None:
        return None
    return "query" if prompt_type == PromptType.query else "document"


class _Encoder(AbsEncoder):
    """What both encoders share: texts out of MTEB's loader in, one array out."""

    def __init__(self, name: str, framework: str, *, quiet: bool) -> None:
        self.mteb_model_meta = model_meta(name, framework)
        self.quiet = quiet

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> FloatArray:
        """The vectors of every text MTEB's loader yields, in its order."""
        texts = [text or " " for batch in inputs for text in batch["text"]]
        input_type = input_type_of(prompt_type)
        label = f"{task_metadata.name} {hf_split}" + (f" {input_type}s" if input_type else "")
        with tqdm(total=len(texts), desc=label, unit="text", disable=self.quiet) as bar:
            return self.vectors(texts, input_type, bar.update)

    @abstractmethod
    def vectors(
        self, texts: list[str], input_type: str | None, on_progress: Callable[[int], None]
    ) -> FloatArray:
        """Vectors of `texts`, calling `on_progress(n)` as n more are done."""


class ServedEncoder(_Encoder):
    """A model behind any OpenAI-compatible `/v1/embeddings`."""

    def __init__(self, client: EmbeddingsClient, *, quiet: bool = False) -> None:
        super().__init__(client.model, "API", quiet=quiet)
        self.client = client

    def vectors(
        self, texts: list[str], input_type: str | None, on_progress: Callable[[int], None]
    ) -> FloatArray:
        return self.client.embed(texts, input_type=input_type, on_progress=on_progress)


class InProcessEncoder(_Encoder):
    """A model loaded in this process by embedserve's engine (`Embedder`)."""

    def __init__(self, embedder: Embedder, name: str, *, quiet: bool = False) -> None:
        super().__init__(name, "embedserve", quiet=quiet)
        self.embedder = embedder

    def vectors(
        self, texts: list[str], input_type: str | None, on_progress: Callable[[int], None]
    ) -> FloatArray:
        parts = []
        for start in range(0, len(texts), IN_PROCESS_CHUNK):
            chunk = texts[start : start + IN_PROCESS_CHUNK]
            parts.append(self.embedder.encode(chunk, input_type=input_type))
            on_progress(len(chunk))
        if not parts:
            return np.empty((0, self.embedder.dimensions), dtype=np.float32)
        return np.concatenate(parts, axis=0)
