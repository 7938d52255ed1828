"""Other architectures and poolings than the bundled model's, on tiny random models.

Each tiny model (see `tests/tiny_models.py`) is built once per session as a real directory, served
in-process on both real backends (ONNX Runtime and PyTorch), and compared with what
sentence-transformers makes of the same directory. One model is also served by a real server
process, under its directory's name.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from embedserve.engine import EmbedResult
from embedserve.models import Pooling, load_model_spec
from embedserve.settings import ModelSettings
from embedserve.testing import embed_in_process
from tests.conftest import start_server
from tests.models.tiny_models import (
    HIDDEN_SIZE,
    MAX_SEQ_LENGTH,
    build_bert,
    build_xlm_roberta_or_mpnet,
)

pytestmark = pytest.mark.slow

FloatArray = npt.NDArray[np.float64]
BACKENDS = ("onnx", "torch")
MIN_COSINE = 0.99999
MAX_DISTINCT_COSINE = 0.99

_LONG = (
    "Dense retrieval systems encode every document of a collection into a single vector and "
    "answer a query by looking for the nearest neighbours of its own vector. The quality of "
    "the answers depends on the encoder, on how the token embeddings are pooled, and on whether "
    "the vectors are normalised before the inner product is taken. Serving such a model well "
    "means batching requests from many clients, keeping padding low, and never changing a "
    "single number that the reference implementation would produce for the same input text."
)
TEXTS = [
    "hello",
    "a",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "Order #12345 costs $99.99 (plus 20% VAT).",
    "café naïve résumé jalapeño",
    "Straße, Ärger, Öl, Übermut",
    "日本語のテキストです。",
    "我喜欢在公园里散步。",
    "Привет, мир! Как дела?",
    "Ελληνικά γράμματα: α β γ δ",
    "مرحبا بالعالم",
    "I love pizza 🍕 and coffee ☕!",
    "https://example.com/path?query=1&other=two#frag",
    "def f(x): return x ** 2",
    "line one\nline two\tand a tab",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
    "Machine learning models map text to dense vectors; dense vectors allow semantic search.",
    _LONG,
    _LONG.split(". ", maxsplit=1)[0] + ".",
]


@dataclass(frozen=True)
class TinyCase:
    """One tiny model: how to build it and what its metadata declares."""

    name: str
    build: Callable[[Path], Path]
    model_type: str
    pooling: Pooling
    normalize: bool


CASES = {
    case.name: case
    for case in (
        TinyCase("tiny-bert-cls", lambda p: build_bert(p, "cls"), "bert", Pooling.CLS, True),
        TinyCase("tiny-bert-max", lambda p: build_bert(p, "max"), "bert", Pooling.MAX, True),
        TinyCase(
            "tiny-bert-mean-raw",
            lambda p: build_bert(p, "mean", normalize=False),
            "bert",
            Pooling.MEAN,
            False,
        ),
        TinyCase(
            "tiny-xlm-roberta-mean",
            lambda p: build_xlm_roberta_or_mpnet(p, "xlm-roberta"),
            "xlm-roberta",
            Pooling.MEAN,
            True,
        ),
        TinyCase(
            "tiny-mpnet-mean",
            lambda p: build_xlm_roberta_or_mpnet(p, "mpnet"),
            "mpnet",
            Pooling.MEAN,
            True,
        ),
    )
}


@dataclass
class TinyModels:
    """Builds each tiny model directory at most once per session."""

    root: Path
    built: dict[str, Path] = field(default_factory=dict)

    def __call__(self, name: str) -> Path:
        if name not in self.built:
            self.built[name] = CASES[name].build(self.root / name)
        return self.built[name]


@dataclass
class Reference:
    """What sentence-transformers makes of one tiny model."""

    vectors: FloatArray
    token_ids: list[list[int]]


@dataclass
class References:
    """sentence-transformers vectors of TEXTS, at most once per model."""

    models: TinyModels
    done: dict[str, Reference] = field(default_factory=dict)

    def __call__(self, name: str) -> Reference:
        if name not in self.done:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(self.models(name)), device="cpu")
            assert model.max_seq_length == MAX_SEQ_LENGTH
            # The model's own Normalize module (if any) still runs.
            vectors = model.encode(TEXTS, batch_size=8, normalize_embeddings=False)
            ids = model.tokenizer(TEXTS, truncation=True, max_length=MAX_SEQ_LENGTH)["input_ids"]
            self.done[name] = Reference(
                np.asarray(vectors, dtype=np.float64), [list(row) for row in ids]
            )
        return self.done[name]


@dataclass
class Served:
    """TEXTS embedded by the in-process engine, at most once per (model, backend)."""

    models: TinyModels
    cache_dir: Path
    done: dict[tuple[str, str], tuple[str, EmbedResult]] = field(default_factory=dict)

    def __call__(self, name: str, kind: str) -> tuple[str, EmbedResult]:
        key = (name, kind)
        if key not in self.done:
            self.done[key] = _embed(self.models(name), kind, self.cache_dir)
        return self.done[key]


def _embed(path: Path, kind: str, cache_dir: Path) -> tuple[str, EmbedResult]:
    return embed_in_process(ModelSettings(path=path, backend=kind), cache_dir, texts=TEXTS)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return TinyModels(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="module")
def references(tiny_models: TinyModels) -> References:
    return References(tiny_models)


@pytest.fixture(scope="module")
def served(tiny_models: TinyModels, onnx_cache_dir: Path) -> Served:
    return Served(tiny_models, onnx_cache_dir)


def unit(vectors: Any) -> FloatArray:
    array = np.asarray(vectors, dtype=np.float64)
    result: FloatArray = array / np.linalg.norm(array, axis=1, keepdims=True)
    return result


def assert_parity(actual: Any, expected: Any) -> None:
    cosines = np.sum(unit(actual) * unit(expected), axis=1)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= MIN_COSINE, (
        f"{int(np.sum(cosines < MIN_COSINE))} texts below cosine {MIN_COSINE}; worst is "
        f"{cosines[worst]:.8f} for text {worst}: {TEXTS[worst][:60]!r}"
    )


def test_texts_are_varied_and_fit_the_max_length(references: References) -> None:
    lengths = [len(ids) for ids in references("tiny-bert-cls").token_ids]
    assert len(set(TEXTS)) == len(TEXTS) >= 20
    assert max(lengths) <= MAX_SEQ_LENGTH, "texts must fit: the engine refuses longer ones"
    assert max(lengths) >= 90, "one text should come close to the maximum"
    assert min(lengths) <= 3
    assert any(100 in ids for ids in references("tiny-bert-cls").token_ids), "no [UNK] input"


@pytest.mark.parametrize("name", CASES)
def test_the_directory_declares_what_the_case_says(tiny_models: TinyModels, name: str) -> None:
    case = CASES[name]
    spec = load_model_spec(tiny_models(name))
    assert spec.model_type == case.model_type
    assert spec.pooling == case.pooling
    assert spec.normalize is case.normalize
    assert spec.max_length == MAX_SEQ_LENGTH
    assert spec.dimension == HIDDEN_SIZE
    assert spec.pad_token_id == 0


@pytest.mark.parametrize("name", CASES)
def test_different_texts_give_clearly_different_vectors(references: References, name: str) -> None:
    """Guards the parity checks against vacuity (a near-constant model would pass them)."""
    vectors = unit(references(name).vectors)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1.0)
    worst = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
    assert similarity[worst] < MAX_DISTINCT_COSINE, (
        f"texts {worst} get cosine {similarity[worst]:.6f} from sentence-transformers"
    )


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("name", CASES)
def test_served_vectors_match_sentence_transformers(
    served: Served, references: References, name: str, kind: str
) -> None:
    backend_name, result = served(name, kind)
    reference = references(name)
    assert backend_name == kind
    assert result.model == name
    assert result.vectors.shape == (len(TEXTS), HIDDEN_SIZE)
    assert np.all(np.isfinite(result.vectors))
    assert result.prompt_tokens == sum(len(ids) for ids in reference.token_ids)
    assert_parity(result.vectors, reference.vectors)


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("name", CASES)
def test_served_norms_match_sentence_transformers(
    served: Served, references: References, name: str, kind: str
) -> None:
    expected = np.linalg.norm(references(name).vectors, axis=1)
    if CASES[name].normalize:
        np.testing.assert_allclose(expected, 1.0, atol=1e-5)
    else:
        # Otherwise unit vectors would pass this test too.
        assert np.all(np.abs(expected - 1.0) > 0.1), "the raw model's norms should not be ~1"
    actual = np.linalg.norm(served(name, kind)[1].vectors.astype(np.float64), axis=1)
    np.testing.assert_allclose(actual, expected, rtol=1e-4)


def test_a_server_process_serves_a_tiny_model_under_its_directory_name(
    tiny_models: TinyModels,
    references: References,
    onnx_cache_dir: Path,
    tmp_path: Path,
) -> None:
    name = "tiny-bert-cls"
    path = tiny_models(name)
    server = start_server(
        ["--model", str(path), "--cache-dir", str(onnx_cache_dir)], tmp_path / "server.log"
    )
    try:
        models = httpx.get(server.base_url + "/v1/models", timeout=10).json()
        body = {"model": name, "input": TEXTS}
        response = httpx.post(server.base_url + "/v1/embeddings", json=body, timeout=60)
    finally:
        server.stop()
    cards = {card["id"]: card for card in models["data"]}
    assert list(cards) == [name], server.log()
    assert cards[name]["dimensions"] == HIDDEN_SIZE
    assert cards[name]["max_model_len"] == MAX_SEQ_LENGTH
    assert cards[name]["pooling"] == "cls"
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["model"] == name
    vectors = [item["embedding"] for item in sorted(payload["data"], key=lambda d: d["index"])]
    assert np.asarray(vectors).shape == (len(TEXTS), HIDDEN_SIZE)
    assert_parity(vectors, references(name).vectors)


def test_an_undeclared_max_length_fits_the_position_table(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    """Without sentence_bert_config.json or tokenizer model_max_length, the limit comes from the
    position table; an input of exactly that many tokens must embed (or be refused with 400)."""
    path = shutil.copytree(tiny_models("tiny-xlm-roberta-mean"), tmp_path / "no-declared-limit")
    (path / "sentence_bert_config.json").unlink()
    tokenizer_config = json.loads((path / "tokenizer_config.json").read_text())
    del tokenizer_config["model_max_length"]
    (path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    spec = load_model_spec(path)
    assert spec.max_length >= MAX_SEQ_LENGTH  # 130 rows, but positions 1..129 only (pad id 0)
    ids = [101, *[2000] * (spec.max_length - 2), 102]

    settings = ModelSettings(path=path, backend="torch")
    _, result = embed_in_process(settings, tmp_path, token_ids=[ids])
    assert result.vectors.shape == (1, HIDDEN_SIZE)
