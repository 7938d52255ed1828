"""`embedserve verify`: do the served vectors match the reference implementation of the model?

The reference is sentence-transformers on the model directory (or, where it is not installed,
`transformers` with the declared pooling). The candidate is a served URL, or the engine
in-process. Both embed a built-in sample of queries and passages; the report gives each text's
cosine and max abs difference, and whether each query still finds the same top-1 passage.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from embedserve.arrays import FloatArray
from embedserve.models import ModelSpec, bundled_model_path, load_model_spec
from embedserve.pooling import pool
from embedserve.postprocess import l2_normalize
from embedserve.settings import ModelSettings

PAIRS: tuple[tuple[str, str], ...] = (
    ("What is the capital of France?", "Paris is the capital and largest city of France."),
    ("How do plants make food?", "Photosynthesis turns light, water and CO2 into sugar."),
    ("Who wrote Hamlet?", "Hamlet is a tragedy written by William Shakespeare."),
    ("What is the boiling point of water?", "At sea level water boils at 100 degrees Celsius."),
    ("How fast is light?", "Light travels at about 300,000 kilometres per second."),
    ("What do bees produce?", "Honey bees make honey from the nectar of flowers."),
    ("Where is Mount Everest?", "Mount Everest lies in the Himalayas, on the Nepal-China border."),
    ("What is Python?", "Python is a programming language known for its readable syntax."),
    ("Why is the sky blue?", "Rayleigh scattering of sunlight makes the sky look blue."),
    ("How many legs does a spider have?", "Spiders are arachnids with eight legs."),
    ("Qu'est-ce qu'un croissant ?", "Le croissant est une viennoiserie au beurre."),
    ("東京はどこですか", "東京は日本の首都です。"),
    ("What is an embedding?", "An embedding maps text to a vector so similar texts lie close."),
    ("When did World War II end?", "The Second World War ended in 1945."),
    ("What is the largest planet?", "Jupiter is the largest planet in the Solar System."),
    ("How do vaccines work?", "Vaccines train the immune system to recognise a pathogen. " * 3),
)


@dataclass(frozen=True)
class VerifyReport:
    """Per-text agreement and the retrieval check."""

    texts: list[str]
    cosine: FloatArray
    max_abs_diff: FloatArray
    top1_agreement: float
    reference: str

    @property
    def min_cosine(self) -> float:
        return float(self.cosine.min())


def sample_texts() -> list[str]:
    """Queries first, then their passages."""
    return [q for q, _ in PAIRS] + [p for _, p in PAIRS]


def reference_vectors(spec: ModelSpec, texts: Sequence[str]) -> tuple[FloatArray, str]:
    """sentence-transformers when installed, else transformers with the declared pooling."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return _transformers_reference(spec, texts), "transformers + declared pooling"
    model = SentenceTransformer(
        str(spec.path), device="cpu", trust_remote_code=spec.trust_remote_code
    )
    model.max_seq_length = spec.max_length
    vectors = np.asarray(model.encode(list(texts)), dtype=np.float32)
    return vectors, "sentence-transformers"


def _transformers_reference(spec: ModelSpec, texts: Sequence[str]) -> FloatArray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(spec.path))
    model = AutoModel.from_pretrained(str(spec.path), trust_remote_code=spec.trust_remote_code)
    rows = []
    for text in texts:  # one at a time: no padding to get wrong
        batch = tokenizer([text], truncation=True, max_length=spec.max_length, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state.float().numpy()
        rows.append(pool(hidden, batch["attention_mask"].numpy(), spec.pooling)[0])
    vectors = np.stack(rows)
    return l2_normalize(vectors) if spec.normalize else vectors


def served_vectors(
    url: str, model: str | None, texts: Sequence[str], api_key: str | None
) -> FloatArray:
    """Ask a running server (any OpenAI-compatible embeddings URL)."""
    from embedserve.bench.loadgen import embeddings_url

    answer = post_json(embeddings_url(url), {"input": list(texts)}, model, api_key)
    data = sorted(answer["data"], key=lambda item: item["index"])
    return np.array([item["embedding"] for item in data], dtype=np.float32)


def post_json(url: str, body: dict[str, Any], model: str | None, api_key: str | None) -> Any:
    """POST `body` (with `model` when given) to `url` with the standard library, the key as a
    bearer token; the parsed answer, or a RuntimeError quoting the server's."""
    body = {**body, "model": model} if model else body
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{url} answered {exc.code}: {exc.read().decode()[:500]}") from exc


def engine_vectors(
    settings: ModelSettings, texts: Sequence[str], cache_dir: Path | None = None
) -> FloatArray:
    """Embed in-process with the engine, as the server would (no truncation)."""
    from embedserve.library import Embedder

    with Embedder(settings, cache_dir=cache_dir) as embedder:
        return embedder.encode(list(texts), truncate=False)


def compare(
    candidate: FloatArray, reference: FloatArray, texts: list[str], source: str
) -> VerifyReport:
    """Cosine and max abs difference per text; top-1 passage agreement per query."""
    norms = np.linalg.norm(candidate, axis=1) * np.linalg.norm(reference, axis=1)
    cosine = (candidate * reference).sum(axis=1) / np.maximum(norms, 1e-12)
    diff = np.abs(candidate - reference).max(axis=1)
    half = len(PAIRS)

    def top1(vectors: FloatArray) -> npt.NDArray[np.int64]:
        unit = l2_normalize(vectors)
        return np.asarray((unit[:half] @ unit[half:].T).argmax(axis=1), dtype=np.int64)

    agreement = float((top1(candidate) == top1(reference)).mean())
    return VerifyReport(
        texts, cosine.astype(np.float32), diff.astype(np.float32), agreement, source
    )


def verify(
    model_path: Path | None,
    *,
    url: str | None = None,
    served_model: str | None = None,
    backend: str = "onnx",
    api_key: str | None = None,
    trust_remote_code: bool = False,
    cache_dir: Path | None = None,
) -> VerifyReport:
    """Run the whole check."""
    spec = load_model_spec(model_path or bundled_model_path(), trust_remote_code=trust_remote_code)
    texts = sample_texts()
    reference, source = reference_vectors(spec, texts)
    if url:
        candidate = served_vectors(url, served_model, texts, api_key)
    else:
        settings = ModelSettings.model_validate(
            {"path": model_path, "backend": backend, "trust_remote_code": trust_remote_code}
        )
        candidate = engine_vectors(settings, texts, cache_dir)
    if candidate.shape != reference.shape:
        raise ValueError(
            f"served vectors have shape {candidate.shape}, reference {reference.shape}"
        )
    return compare(candidate, reference, texts, source)


def render(report: VerifyReport) -> str:
    """The per-text table and the summary."""
    lines = ["| # | text | cosine | max abs diff |", "|---|---|---|---|"]
    for index, text in enumerate(report.texts):
        short = text if len(text) <= 48 else text[:45] + "..."
        lines.append(
            f"| {index} | {short} | {report.cosine[index]:.7f} | {report.max_abs_diff[index]:.2e} |"
        )
    lines += [
        "",
        f"reference: {report.reference}",
        f"min cosine: {report.min_cosine:.7f}   mean cosine: {float(report.cosine.mean()):.7f}",
        f"max abs difference: {float(report.max_abs_diff.max()):.2e}",
        f"retrieval top-1 agreement: {report.top1_agreement:.0%} of {len(PAIRS)} queries",
    ]
    return "\n".join(lines)
