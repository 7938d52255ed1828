"""Parity of the real backends (ONNX Runtime and PyTorch) with sentence-transformers.

Each backend embeds one generated corpus once per module (in-process engine, no HTTP); the tests
then compare those vectors and token counts with `SentenceTransformer` on the bundled model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from embedserve.backends import onnx_export
from embedserve.engine import EmbedResult, Engine
from embedserve.models import BUNDLED_MODEL_ID, bundled_model_path, load_model_spec
from embedserve.runner import ModelRunner
from embedserve.settings import ModelSettings
from tests.models.corpus import OVERLONG, SINGLE_INDICES, TEXTS

pytestmark = pytest.mark.slow


FloatArray = npt.NDArray[np.float32]


BACKENDS = ("onnx", "torch")


MIN_COSINE = 0.99999


MAX_TOKENS = 256  # max_seq_length of the bundled model


DIMENSION = 384


@dataclass
class BackendRun:
    """Everything one backend produced for the corpus."""

    kind: str
    backend_name: str
    batch: EmbedResult
    singles: dict[int, FloatArray]
    truncated: EmbedResult


@dataclass
class Reference:
    """sentence-transformers vectors (unit length) and token ids of the corpus."""

    vectors: FloatArray
    token_ids: list[list[int]]
    overlong_vectors: FloatArray
    overlong_token_ids: list[list[int]]


@dataclass
class Runs:
    """Embeds the corpus with each backend at most once per module."""

    cache_dir: Path
    done: dict[str, BackendRun] = field(default_factory=dict)

    def __call__(self, kind: str) -> BackendRun:
        if kind not in self.done:
            self.done[kind] = asyncio.run(_run_backend(kind, self.cache_dir))
        return self.done[kind]


async def _run_backend(kind: str, cache_dir: Path) -> BackendRun:
    async with Engine.from_models(ModelSettings(backend=kind), cache_dir=cache_dir) as engine:
        executor = engine.runners[0].executor
        assert executor is not None
        backend_name = executor.backend.name
        batch = await engine.embed(TEXTS)
        singles: dict[int, FloatArray] = {}
        for index in SINGLE_INDICES:
            singles[index] = (await engine.embed([TEXTS[index]])).vectors[0]
        truncated = await engine.embed(OVERLONG, truncate_prompt_tokens=-1)
    return BackendRun(kind, backend_name, batch, singles, truncated)


def unit(vectors: Any) -> FloatArray:
    """Rows scaled to unit length, in float64 for the comparisons."""
    array = np.asarray(vectors, dtype=np.float64)
    result: FloatArray = array / np.linalg.norm(array, axis=1, keepdims=True)
    return result


def row_cosines(a: Any, b: Any) -> npt.NDArray[np.float64]:
    """Cosine of row i of `a` with row i of `b`."""
    result: npt.NDArray[np.float64] = np.sum(unit(a) * unit(b), axis=1)
    return result


def assert_parity(actual: Any, expected: Any, texts: list[str], minimum: float) -> None:
    cosines = row_cosines(actual, expected)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= minimum, (
        f"{int(np.sum(cosines < minimum))} texts below cosine {minimum}; worst is "
        f"{cosines[worst]:.8f} for text {worst}: {texts[worst][:80]!r}"
    )


@pytest.fixture(scope="module")
def reference() -> Reference:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    assert model.max_seq_length == MAX_TOKENS

    def encode(texts: list[str]) -> tuple[FloatArray, list[list[int]]]:
        # The model's Normalize module runs even with normalize_embeddings=False; unit() anyway.
        vectors = model.encode(texts, batch_size=16, normalize_embeddings=False)
        ids = model.tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]
        return unit(vectors).astype(np.float32), [list(row) for row in ids]

    vectors, token_ids = encode(TEXTS)
    overlong_vectors, overlong_ids = encode(OVERLONG)
    return Reference(vectors, token_ids, overlong_vectors, overlong_ids)


@pytest.fixture(scope="module")
def runs(onnx_cache_dir: Path) -> Iterator[Runs]:
    yield Runs(onnx_cache_dir)


def test_corpus_covers_what_it_claims(reference: Reference) -> None:
    lengths = [len(ids) for ids in reference.token_ids]
    assert len(TEXTS) >= 100
    assert len(set(TEXTS)) == len(TEXTS)
    assert max(lengths) <= MAX_TOKENS, "the main corpus must fit without truncation"
    assert sum(length > 128 for length in lengths) >= 20
    assert sum(length > 200 for length in lengths) >= 5
    assert sum(length <= 5 for length in lengths) >= 10
    assert all(len(ids) == MAX_TOKENS for ids in reference.overlong_token_ids)
    joined = "".join(TEXTS)
    for needle in ("é", "東", "😀", "  ", "\t", "\n", "7", "!"):
        assert needle in joined


@pytest.mark.parametrize("kind", BACKENDS)
def test_runs_on_the_requested_backend(runs: Runs, kind: str) -> None:
    run = runs(kind)
    assert run.backend_name == kind
    assert run.batch.model == BUNDLED_MODEL_ID
    assert run.batch.vectors.shape == (len(TEXTS), DIMENSION)
    assert run.batch.vectors.dtype == np.float32
    assert np.all(np.isfinite(run.batch.vectors))


@pytest.mark.parametrize("kind", BACKENDS)
def test_vectors_match_sentence_transformers(runs: Runs, reference: Reference, kind: str) -> None:
    assert_parity(runs(kind).batch.vectors, reference.vectors, TEXTS, MIN_COSINE)


@pytest.mark.parametrize("kind", BACKENDS)
def test_vectors_have_unit_norm(runs: Runs, kind: str) -> None:
    run = runs(kind)
    for vectors in (run.batch.vectors, run.truncated.vectors):
        norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", BACKENDS)
def test_usage_counts_the_tokens_sentence_transformers_feeds(
    runs: Runs, reference: Reference, kind: str
) -> None:
    expected = sum(len(ids) for ids in reference.token_ids)
    assert runs(kind).batch.prompt_tokens == expected


@pytest.mark.parametrize("kind", BACKENDS)
def test_different_texts_give_clearly_different_vectors(
    runs: Runs, reference: Reference, kind: str
) -> None:
    """Guards the parity check against vacuity: a constant, shuffled or mixed-up output fails."""
    vectors = unit(runs(kind).batch.vectors)
    similarity = vectors @ unit(reference.vectors).T
    same_tokens = np.array(
        [[a == b for b in reference.token_ids] for a in reference.token_ids], dtype=bool
    )
    # The uncased tokenizer makes e.g. "hello" and "Hello" the same input; those may coincide.
    assert same_tokens.sum() > len(TEXTS), "the corpus should contain case-only variants"
    distinct = similarity[~same_tokens]
    assert distinct.max() < 0.99, f"two different inputs got cosine {distinct.max():.6f}"
    nearest = np.argmax(similarity, axis=1)
    wrong = [i for i, j in enumerate(nearest) if not same_tokens[i, j]]
    assert not wrong, f"texts whose nearest reference vector is another text's: {wrong}"
    own = np.diag(similarity)
    assert float(np.mean(own - distinct.mean())) > 0.3


@pytest.mark.parametrize("kind", BACKENDS)
def test_one_text_per_request_matches_the_batch(runs: Runs, kind: str) -> None:
    run = runs(kind)
    assert len(run.singles) >= 15
    for index, vector in run.singles.items():
        # Batched rows are padded to the batch's longest input; the bits may move slightly.
        np.testing.assert_allclose(
            vector, run.batch.vectors[index], atol=1e-6, err_msg=f"text {index}"
        )


@pytest.mark.parametrize("kind", BACKENDS)
def test_truncation_to_the_model_max_matches_sentence_transformers(
    runs: Runs, reference: Reference, kind: str
) -> None:
    run = runs(kind)
    assert run.truncated.prompt_tokens == MAX_TOKENS * len(OVERLONG)
    assert_parity(run.truncated.vectors, reference.overlong_vectors, OVERLONG, MIN_COSINE)


def test_backends_agree_with_each_other(runs: Runs) -> None:
    onnx, torch = runs("onnx"), runs("torch")
    assert onnx.batch.prompt_tokens == torch.batch.prompt_tokens
    assert_parity(onnx.batch.vectors, torch.batch.vectors, TEXTS, MIN_COSINE)


def _export_refused(spec: Any, destination: Path) -> None:
    raise AssertionError(f"the model was exported again to {destination}")


def test_second_load_reuses_the_cached_onnx_export(
    runs: Runs, onnx_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs("onnx")  # the first load exported the model (or found this session's export)
    spec = load_model_spec(bundled_model_path())
    cached = onnx_export.cached_onnx_path(spec, onnx_cache_dir)
    assert cached.is_file()
    before = cached.stat().st_mtime_ns
    entries = sorted(p.name for p in (onnx_cache_dir / "onnx").iterdir())
    monkeypatch.setattr(onnx_export, "export_to_onnx", _export_refused)

    runner = ModelRunner.from_settings(ModelSettings(backend="onnx"), cache_dir=onnx_cache_dir)
    runner.load()
    try:
        assert runner.executor is not None and runner.executor.backend.name == "onnx"
    finally:
        runner.close()

    assert cached.stat().st_mtime_ns == before
    assert sorted(p.name for p in (onnx_cache_dir / "onnx").iterdir()) == entries


def test_the_export_guard_would_catch_a_re_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The patched exporter is the one a cold cache calls, so the test above can fail."""
    monkeypatch.setattr(onnx_export, "export_to_onnx", _export_refused)
    runner = ModelRunner.from_settings(ModelSettings(backend="onnx"), cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="exported again"):
        runner.load()
    assert not list(tmp_path.rglob("model.onnx"))
