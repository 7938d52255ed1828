"""Every comparison of issue 3 in one run, on the same machine and texts.

(a) sentence-transformers `encode` in-process, (b) our ONNX backend in-process with our batching
(the raw ceiling), (c) embedserve over HTTP at 1, 8, 32 and 128 clients (with --soak, RSS over a
long run), (d) Infinity over HTTP with the same load generator (installed in its own virtualenv),
then (e) robustness rows: the OVMS benchmark client's shape and a 128 x 64 indexer without
retries, open-loop overload at 4x the sustainable rate (defaults, and --max-queue-seconds 1),
/health latency during a flood of worst-case bodies, and the drain on SIGTERM. Writes
benchmarks/results/<stamp>.json and benchmarks/results/latest.md (with --robustness-only:
<stamp>-robustness.json and robustness-latest.md, so a full report is not overwritten).

    .venv/bin/python benchmarks/compare.py [--quick] [--skip-infinity] [--soak 100000]
    .venv/bin/python benchmarks/compare.py --robustness-only [--quick]   # (e) alone, minutes"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from inprocess import bench_raw_backend, bench_sentence_transformers
from render_robustness import render_robustness, robustness_targets
from render_throughput import Target, render_throughput, throughput_targets
from rows import QUICK_SIZES, RobustnessSizes, Workload, http_suite, robustness, soak
from servers import RESULTS, embedserve_server, infinity_server

from embedserve.bench.report import Report
from embedserve.bench.workloads import generate_texts
from embedserve.models import BUNDLED_MODEL_ID
from embedserve.runner import ModelRunner
from embedserve.settings import ModelSettings, default_cache_dir


def render(result: dict[str, Any]) -> str:
    """The Markdown report: whichever sections ran, then the summary of measures and targets."""
    lines = [f"Machine: {result['machine']}. Model: {BUNDLED_MODEL_ID}. Texts: {result['texts']}."]
    targets: list[Target] = []
    if "st" in result:
        lines += render_throughput(result)
        targets += throughput_targets(result)
    if "robustness" in result:
        lines += render_robustness(result["robustness"])
        targets += robustness_targets(result["robustness"])
    lines += ["", "| measure | value | target |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {target} |" for name, value, target in targets]
    return "\n".join(lines) + "\n"


def plain(value: Any) -> Any:
    if isinstance(value, Report):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def throughput(
    args: argparse.Namespace, work: Workload, cache_dir: Path, result: dict[str, Any]
) -> float:
    """(a)-(d) into `result`; returns the best mixed req/s of embedserve over HTTP."""
    tokens = sum(work.mixed_counts)
    print("(a) sentence-transformers ...", flush=True)
    result["st"] = bench_sentence_transformers(work.mixed, work.short, tokens, args.repeats)
    reference = result["st"]["_reference"]
    print("(b) raw backend ...", flush=True)
    result["raw"] = bench_raw_backend(work.mixed, work.short, tokens, args.repeats, cache_dir)
    suite = {
        "mixed": work.mixed,
        "mixed_counts": work.mixed_counts,
        "short": work.short,
        "short_counts": work.short_counts,
        "requests": len(work.mixed),
        "reference": reference,
    }
    print("(c) embedserve over HTTP ...", flush=True)
    with embedserve_server(cache_dir) as server:
        result["embedserve"] = http_suite(server, **suite)
        if args.soak:
            result["soak"] = soak(server, work.short, work.short_counts, args.soak)
    if not args.skip_infinity:
        print("(d) Infinity over HTTP ...", flush=True)
        try:
            with tempfile.TemporaryDirectory() as tmp, infinity_server(Path(tmp)) as server:
                result["infinity"] = http_suite(server, **suite)
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            result["infinity_error"] = str(exc)[-500:]
    rows = result["embedserve"]["rows"]
    return float(max(r.requests_per_s for k, r in rows.items() if k.startswith("mixed")))


def parse_args() -> argparse.Namespace:
    """The command line; --quick shrinks every part."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="mixed texts (5-120 words)")
    parser.add_argument("--repeats", type=int, default=3, help="in-process runs (median)")
    parser.add_argument(
        "--quick", action="store_true", help="500 texts, 1 repeat, smaller robustness rows"
    )
    parser.add_argument("--skip-infinity", action="store_true")
    parser.add_argument("--soak", type=int, default=0, help="requests of the soak run (0: none)")
    parser.add_argument(
        "--overload-seconds", type=int, default=None, help="default: 20 (5 with --quick)"
    )
    parser.add_argument(
        "--robustness-only",
        action="store_true",
        help="run only (e), the robustness rows (a few minutes); writes "
        "results/<stamp>-robustness.json and results/robustness-latest.md",
    )
    args = parser.parse_args()
    if args.quick:
        args.texts, args.repeats = 500, 1
    return args


def main() -> int:
    args = parse_args()
    sizes = QUICK_SIZES if args.quick else RobustnessSizes()
    if args.overload_seconds is not None:
        sizes = dataclasses.replace(sizes, overload_seconds=args.overload_seconds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    cache_dir = default_cache_dir()
    mixed = generate_texts("mixed", args.texts)
    short = generate_texts("short", args.texts)
    tokenizer = ModelRunner.from_settings(ModelSettings(), cache_dir).tokenizer
    work = Workload(
        mixed=mixed,
        mixed_counts=[len(ids) for ids in tokenizer.encode(mixed)],
        short=short,
        short_counts=[len(ids) for ids in tokenizer.encode(short)],
    )
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "texts": f"{len(mixed)} mixed (5-120 words, {sum(work.mixed_counts)} tokens, seed 0) "
        f"and {len(short)} short (10 tokens)",
        "repeats": args.repeats,
    }
    sustainable = None if args.robustness_only else throughput(args, work, cache_dir, result)
    print("(e) robustness ...", flush=True)
    result["robustness"] = robustness(cache_dir, work, sizes, sustainable)
    suffix = "-robustness" if args.robustness_only else ""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"{stamp}{suffix}.json").write_text(json.dumps(plain(result), indent=2) + "\n")
    table = render(result)
    (RESULTS / ("robustness-latest.md" if args.robustness_only else "latest.md")).write_text(table)
    print("\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
