"""What `--deterministic` costs: tokens/s with and without it, same texts, same run."""

from __future__ import annotations

from typing import Any

from engine_load import compare_engines

from embedserve.bench.workloads import generate_texts
from embedserve.engine import Engine
from embedserve.settings import default_cache_dir

SHAPES = [(1, 256), (8, 16), (32, 4)]  # (clients, texts per request): indexer to many users


async def deterministic_cost(texts: int, repeats: int) -> dict[str, Any]:
    """Throughput of both modes on mixed texts, at three load shapes."""
    mixed = generate_texts("mixed", texts)
    cache_dir = default_cache_dir()
    async with (
        Engine.from_models(cache_dir=cache_dir, cache_entries=0, deterministic=False) as plain,
        Engine.from_models(cache_dir=cache_dir, cache_entries=0, deterministic=True) as stable,
    ):
        tokens = sum(len(ids) for ids in plain.runners[0].tokenizer.encode(mixed))
        engines = {"default": plain, "deterministic": stable}
        rows = await compare_engines(engines, [mixed] * repeats, SHAPES)
    for row in rows:
        rates = row["tokens_per_s"]
        row["cost"] = 1 - rates["deterministic"] / rates["default"]
    return {"texts": len(mixed), "tokens": tokens, "repeats": repeats, "rows": rows}


def render_deterministic(result: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"### --deterministic: {result['texts']} mixed texts ({result['tokens']} tokens), "
        f"median of {result['repeats']} interleaved runs",
        "",
        "| clients x texts/request | off: tokens/s | on: tokens/s | cost | "
        "padding share (off / on) | mean batch (off / on) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        rates, pad, size = row["tokens_per_s"], row["padding_share"], row["mean_batch"]
        lines.append(
            f"| {row['clients']} x {row['texts_per_request']} | {rates['default']:,.0f} | "
            f"{rates['deterministic']:,.0f} | {row['cost']:+.1%} | "
            f"{pad['default']:.1%} / {pad['deterministic']:.1%} | "
            f"{size['default']:.1f} / {size['deterministic']:.1f} |"
        )
    lines += ["", "cost: 1 - deterministic / default tokens/s (negative: deterministic faster)."]
    return lines
