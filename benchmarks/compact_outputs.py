"""Compact outputs (`output_dtype`) on a retrieval sample: how much of float32's top 10 each
dtype keeps, with the scoring a vector store would use for it."""

from __future__ import annotations

from typing import Any

import numpy as np
from retrieval_sample import docstring_pairs

from embedserve.engine import Engine
from embedserve.output_dtypes import convert, wire_bytes
from embedserve.postprocess import PostProcess
from embedserve.quantization import request_ranges

K = 10
FLOAT = ["float32", "float16", "bfloat16"]
RESCORE = 4  # binary + rescoring: the Hamming top K * RESCORE, rescored with the float query
SCORING = {
    "float32": "dot product",
    "float16": "dot product",
    "bfloat16": "dot product",
    "int8": "dot product of the decoded values (bucket centres)",
    "uint8": "dot product of the decoded values (bucket centres)",
    "int8 codes": "integer dot product of the codes",
    "uint8 codes": "Euclidean distance between the codes",
    "ubinary": "Hamming distance",
    "ubinary + rescoring": f"Hamming top {K * RESCORE}, rescored: float query . ±1 bits",
    "ubinary + int8 rescoring": f"Hamming top {K * RESCORE}, rescored: float query . int8 decoded",
}


def decoded(codes: Any, ranges: np.ndarray, dtype: str) -> np.ndarray:
    """The centre of each code's bucket (what a scalar-quantising store scores with)."""
    starts = ranges[0]
    steps = (ranges[1] - starts) / 255
    buckets = np.asarray(codes, np.float32) + (128 if dtype == "int8" else 0)
    return np.asarray(starts + (buckets + 0.5) * steps, dtype=np.float32)


def scores(queries: Any, docs: Any, dtype: str) -> np.ndarray:
    """Higher is better, per (query, document), as a store of that dtype would compute."""
    if dtype == "int8":
        return np.asarray(queries, np.int64) @ np.asarray(docs, np.int64).T
    if dtype == "uint8":
        q, d = np.asarray(queries, np.float64), np.asarray(docs, np.float64)
        return -(np.sum(q * q, axis=1)[:, None] - 2 * q @ d.T + np.sum(d * d, axis=1)[None, :])
    if dtype == "ubinary":
        qb, db = np.unpackbits(queries, axis=1), np.unpackbits(docs, axis=1)
        q, d = qb.astype(np.int32), db.astype(np.int32)
        return -(q @ (1 - d).T + (1 - q) @ d.T)
    return np.asarray(queries, np.float32) @ np.asarray(docs, np.float32).T


def top(score: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best per row (ties: lower index first)."""
    return np.argsort(-score, axis=1, kind="stable")[:, :k]


def rescored_binary(
    queries: np.ndarray, docs: np.ndarray, rescore_with: np.ndarray | None = None
) -> np.ndarray:
    """Rescoring: the Hamming candidates ranked by the float32 query's dot product with each
    candidate's ±1 bits (sentence-transformers' way), or with `rescore_with` (e.g. the decoded
    int8 vectors kept beside the binary index)."""
    packed_q, packed_d = convert(queries, "ubinary"), convert(docs, "ubinary")
    candidates = top(scores(packed_q, packed_d, "ubinary"), K * RESCORE)
    signs = np.unpackbits(packed_d, axis=1).astype(np.float32) * 2 - 1
    stored = signs if rescore_with is None else rescore_with
    chosen = []
    for row, picks in enumerate(candidates):
        rescore = stored[picks] @ queries[row]
        chosen.append(picks[np.argsort(-rescore, kind="stable")[:K]])
    return np.asarray(chosen)


def overlap(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of `truth` found in the same row of `found`."""
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


async def compact_outputs(engine: Engine, docs: int, queries: int) -> dict[str, Any]:
    """recall@10 against float32 and hit@10 of the true document, per dtype."""
    pairs = docstring_pairs(docs)
    every = max(len(pairs) // queries, 1)
    asked = list(range(0, len(pairs), every))[:queries]
    doc_vectors = (await engine.embed([body for _, body in pairs], truncate="END")).vectors
    query_vectors = (await engine.embed([pairs[i][0] for i in asked])).vectors
    runner = engine.runners[0]
    finish = PostProcess.of(runner.spec, None, None)
    ranges = await request_ranges(engine.tokenizers, runner, finish, doc_vectors.shape[1], 600.0)
    truth = top(scores(query_vectors, doc_vectors, "float32"), K)
    answers = np.asarray(asked)[:, None]
    rows = []
    int8_docs = decoded(convert(doc_vectors, "int8", ranges), ranges, "int8")
    rescored = {
        "ubinary + rescoring": rescored_binary(query_vectors, doc_vectors),
        "ubinary + int8 rescoring": rescored_binary(query_vectors, doc_vectors, int8_docs),
    }
    labels = [*FLOAT, "int8", "uint8", "int8 codes", "uint8 codes", "ubinary", *rescored]
    for label in labels:
        dtype = name = stored = label.split()[0]
        if label in rescored:
            found = rescored[label]
        else:
            q, d = (convert(v, dtype, ranges) for v in (query_vectors, doc_vectors))
            if label in ("int8", "uint8"):
                q, d, dtype = decoded(q, ranges, dtype), decoded(d, ranges, dtype), "float32"
            found = top(scores(q, d, dtype), K)
        size = len(wire_bytes(convert(doc_vectors[:1], stored, ranges)[0], stored))
        rows.append(
            {
                "dtype": label,
                "bytes": size,
                "scoring": SCORING[label],
                "recall_at_10": overlap(found, truth),
                "hit_at_10": float(np.mean(np.any(found == answers, axis=1))),
                "served_as": name,
            }
        )
    spot = await spot_check(engine, [body for _, body in pairs[:64]], doc_vectors[:64], ranges)
    return {"docs": len(pairs), "queries": len(asked), "rows": rows, "served_equal": spot}


async def spot_check(
    engine: Engine, texts: list[str], floats: Any, ranges: Any
) -> dict[str, float]:
    """Share of values the engine returns per dtype equal to converting its float32 answer."""
    shares = {}
    for dtype in ["float16", "bfloat16", "int8", "uint8", "binary", "ubinary"]:
        served = (await engine.embed(texts, truncate="END", output_dtype=dtype)).vectors
        expected = convert(floats, dtype, ranges)
        shares[dtype] = float(np.mean(np.asarray(served) == np.asarray(expected)))
    return shares


def render_compact(result: dict[str, Any]) -> list[str]:
    """The Markdown table."""
    lines = [
        "",
        f"### Compact outputs: {result['docs']} documents, {result['queries']} queries",
        "",
        "| output_dtype | bytes/vector | scoring | recall@10 vs float32 | true doc in top 10 |",
        "|---|---:|---|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['dtype']} | {row['bytes']} | {row['scoring']} | "
            f"{row['recall_at_10']:.3f} | {row['hit_at_10']:.3f} |"
        )
    equal = ", ".join(f"{k} {v:.4f}" for k, v in result["served_equal"].items())
    lines += ["", f"Served values equal to converting the float32 answer: {equal}."]
    return lines
