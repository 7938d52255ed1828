"""`embedserve verify` and `export` for a reranker: do the served scores match the reference?

The reference is sentence-transformers' `CrossEncoder.predict` (or, where it is not installed,
`transformers` with the model's declared activation). The sample is every query of the built-in
pairs against every passage; the report gives the largest score difference and whether each
query still ranks the same passage first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedserve.arrays import FloatArray
from embedserve.models import ModelSpec
from embedserve.settings import ModelSettings
from embedserve.verify import PAIRS, post_json


@dataclass(frozen=True)
class ScoreReport:
    """Candidate and reference scores of the sample pairs, query by query."""

    candidate: FloatArray  # (queries, passages)
    reference: FloatArray
    source: str

    @property
    def max_abs_diff(self) -> float:
        return float(np.abs(self.candidate - self.reference).max())

    @property
    def top1_agreement(self) -> float:
        same = self.candidate.argmax(axis=1) == self.reference.argmax(axis=1)
        return float(same.mean())


def sample_pairs() -> list[tuple[str, str]]:
    """Every built-in query against every passage, query by query."""
    return [(query, passage) for query, _ in PAIRS for _, passage in PAIRS]


def reference_scores(spec: ModelSpec, pairs: list[tuple[str, str]]) -> tuple[FloatArray, str]:
    """`CrossEncoder.predict` when installed, else transformers with the declared activation."""
    try:
        from sentence_transformers import CrossEncoder
    except ImportError:
        return _transformers_reference(spec, pairs), "transformers + declared activation"
    model = CrossEncoder(
        str(spec.path),
        device="cpu",
        max_length=spec.max_length,
        trust_remote_code=spec.trust_remote_code,
    )
    return np.asarray(model.predict(pairs), dtype=np.float32), "sentence-transformers CrossEncoder"


def _transformers_reference(spec: ModelSpec, pairs: list[tuple[str, str]]) -> FloatArray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    assert spec.score_head is not None
    tokenizer = AutoTokenizer.from_pretrained(str(spec.path))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(spec.path), trust_remote_code=spec.trust_remote_code
    ).eval()
    logits = []
    for query, passage in pairs:  # one at a time: no padding to get wrong
        batch = tokenizer(
            [query], [passage], truncation="only_second", max_length=spec.max_length,
            return_tensors="pt",
        )  # fmt: skip
        with torch.inference_mode():
            logits.append(model(**batch).logits.float().numpy()[0])
    return spec.score_head.scores(np.stack(logits))[:, 0]


def served_scores(
    url: str, model: str | None, pairs: list[tuple[str, str]], api_key: str | None
) -> FloatArray:
    """Ask a running server's vLLM-style `/score`, pairwise."""
    body = {"text_1": [q for q, _ in pairs], "text_2": [p for _, p in pairs]}
    answer = post_json(url.rstrip("/").removesuffix("/v1") + "/score", body, model, api_key)
    data = sorted(answer["data"], key=lambda item: item["index"])
    return np.array([item["score"] for item in data], dtype=np.float32)


def engine_scores(
    settings: ModelSettings, pairs: list[tuple[str, str]], cache_dir: Path | None = None
) -> FloatArray:
    """Score in-process with the engine, as the server would."""
    from embedserve.library import Embedder

    with Embedder(settings, cache_dir=cache_dir) as embedder:
        return embedder.predict(pairs)


def verify_scores(
    spec: ModelSpec,
    settings: ModelSettings,
    *,
    url: str | None = None,
    served_model: str | None = None,
    api_key: str | None = None,
    cache_dir: Path | None = None,
) -> ScoreReport:
    """Score the sample on the server at `url`, or in-process with `settings`."""
    pairs = sample_pairs()
    reference, source = reference_scores(spec, pairs)
    if url:
        candidate = served_scores(url, served_model, pairs, api_key)
    else:
        candidate = engine_scores(settings, pairs, cache_dir)
    shape = (len(PAIRS), len(PAIRS))
    return ScoreReport(candidate.reshape(shape), reference.reshape(shape), source)


def render_scores(report: ScoreReport) -> str:
    """The summary for the terminal."""
    return "\n".join(
        [
            f"reference: {report.source}, {report.reference.size} (query, passage) pairs",
            f"max abs score difference: {report.max_abs_diff:.2e}",
            f"top-1 passage agreement: {report.top1_agreement:.0%} of {len(PAIRS)} queries",
        ]
    )
