"""Issue 9's measurements on the bundled model, in-process on the ONNX backend: compact outputs
(recall@10 per `output_dtype` against float32), the throughput cost of `--deterministic`, and
the result cache (hit latency; throughput on texts that never repeat, cache on and off).
Writes benchmarks/results/vector-controls.json
and vector-controls.md.

    .venv/bin/python benchmarks/vector_controls.py [--docs 1200] [--queries 300]"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
from typing import Any

from compact_outputs import compact_outputs, render_compact
from deterministic_cost import deterministic_cost, render_deterministic
from result_cache_cost import render_cache, result_cache_cost
from servers import RESULTS

from embedserve.engine import Engine
from embedserve.models import BUNDLED_MODEL_ID
from embedserve.settings import default_cache_dir


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "model": BUNDLED_MODEL_ID,
    }
    async with Engine.from_models(cache_dir=default_cache_dir()) as engine:
        print("compact outputs ...", flush=True)
        result["compact"] = await compact_outputs(engine, args.docs, args.queries)
    print("--deterministic ...", flush=True)
    result["deterministic"] = await deterministic_cost(args.texts, args.repeats + 2)
    print("result cache ...", flush=True)
    result["cache"] = await result_cache_cost(args.texts, args.repeats)
    return result


def render(result: dict[str, Any]) -> str:
    lines = [f"Machine: {result['machine']}. Model: {result['model']}."]
    lines += render_compact(result["compact"])
    lines += render_deterministic(result["deterministic"])
    lines += render_cache(result["cache"])
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1200, help="documents of the sample")
    parser.add_argument("--queries", type=int, default=300, help="queries of the sample")
    parser.add_argument("--texts", type=int, default=600, help="mixed texts of the load rows")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved runs (median)")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vector-controls.json").write_text(json.dumps(result, indent=2) + "\n")
    table = render(result)
    (RESULTS / "vector-controls.md").write_text(table)
    print("\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
