"""The served encoder as MTEB calls it, over a real uvicorn server (fake backend, a model that
declares prompts): MTEB's query/document prompt types reach the model's prompts, empty texts
are embedded, and results are filed under a name MTEB accepts."""

from __future__ import annotations

import dataclasses

import numpy as np
from mteb.types import PromptType

from embedserve.engine import Engine
from embedserve.evaluation.client import ClientOptions, EmbeddingsClient
from embedserve.evaluation.encoders import ServedEncoder, input_type_of, model_meta
from embedserve.evaluation.local_tasks import task_from_folder
from embedserve.models import ModelSpec
from tests.conftest import fake_runner, uvicorn_in_thread
from tests.eval_tasks import write_sts

PROMPTS = (("query", "query: "), ("passage", "passage: "))


def test_prompt_types_reach_the_models_prompts(bundled_spec: ModelSpec, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = dataclasses.replace(bundled_spec, prompts=PROMPTS)
    runner, _ = fake_runner(spec)
    task = task_from_folder(write_sts(tmp_path / "sts"))
    with uvicorn_in_thread(Engine([runner])) as url:
        client = EmbeddingsClient(ClientOptions(url, batch_size=2))
        encoder = ServedEncoder(client, quiet=True)
        batches = [{"text": ["first text", ""]}, {"text": ["third"]}]

        def encode(prompt_type: PromptType | None) -> np.ndarray:
            return encoder.encode(
                batches,
                task_metadata=task.metadata,
                hf_split="test",
                hf_subset="default",
                prompt_type=prompt_type,
            )

        queries, documents, plain = (
            encode(kind) for kind in (PromptType.query, PromptType.document, None)
        )
        by_hand = client.embed(["query: first text", "query:  ", "query: third"])
        passages = client.embed(["passage: first text", "passage:  ", "passage: third"])
        unprompted = client.embed(["first text", " ", "third"])
    assert np.array_equal(queries, by_hand)
    assert np.array_equal(documents, passages)
    assert np.array_equal(plain, unprompted)
    assert not np.array_equal(queries, plain)
    assert encoder.mteb_model_meta is not None
    assert encoder.mteb_model_meta.name == client.model == "sentence-transformers/all-MiniLM-L6-v2"


def test_prompt_types_and_names() -> None:
    assert input_type_of(PromptType.query) == "query"
    assert input_type_of(PromptType.document) == "document"
    assert input_type_of(None) is None
    assert model_meta("org/model", "API").name == "org/model"
    assert model_meta("model", "API").model_name_as_path() == "embedserve__model"
