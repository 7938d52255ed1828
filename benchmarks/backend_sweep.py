"""Throughput and p50/p99 latency against concurrency for each CPU backend of the bundled model
(ONNX, PyTorch, OpenVINO), one server at a time, the same `embedserve bench` sweep for each.
Writes benchmarks/results/backends.{json,md} and benchmarks/results/plots/backends.png.

    .venv/bin/python benchmarks/backend_sweep.py [--concurrency 1,4,16] [--requests 400]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from servers import RESULTS, embedserve_server

from embedserve.bench.plots import plot_sweep, sweep_points
from embedserve.bench.report import Report
from embedserve.settings import default_cache_dir

BACKENDS = ("onnx", "torch", "openvino")


def sweep(backend: str, args: argparse.Namespace, work: Path) -> list[Report]:
    """One server on `backend`, the bench sweep against it."""
    output = work / f"{backend}.json"
    with embedserve_server(default_cache_dir(), "--backend", backend) as server:
        command = [sys.executable, "-m", "embedserve", "bench", "--url", server.embeddings_url]
        command += ["--workload", "mixed", "--concurrency", args.concurrency]
        command += ["--requests", str(args.requests), "--warmup", "50", "--json", str(output)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"bench on {backend} failed:\n{done.stderr[-2000:]}")
    return [Report.from_dict(row) for row in json.loads(output.read_text())]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="1,4,16", help="closed-loop clients, a list")
    parser.add_argument("--requests", type=int, default=400, help="requests per point")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        series = {backend: sweep(backend, args, Path(work)) for backend in BACKENDS}
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    lines = [
        f"Machine: {machine}. Bundled model, `mixed` texts (5-120 words), one per request, "
        f"{args.requests} requests per point.",
        "",
        "| backend | clients | texts/s | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for backend, reports in series.items():
        points = sweep_points(reports)
        for index, clients in enumerate(points["concurrency"]):
            lines.append(
                f"| {backend} | {clients:.0f} | {points['inputs_per_s'][index]:.0f} "
                f"| {points['p50_ms'][index]:.1f} | {points['p99_ms'][index]:.1f} |"
            )
    markdown = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "backends.md").write_text(markdown)
    data = {
        backend: [report.to_dict() for report in reports] for backend, reports in series.items()
    }
    (RESULTS / "backends.json").write_text(json.dumps({"machine": machine, "backends": data}))
    title = "embedserve per backend, closed loop, mixed texts, one per request"
    print(plot_sweep(series, RESULTS / "plots" / "backends.png", title))
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
