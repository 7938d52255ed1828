"""embedserve on Ray measured on this machine, in one run: the corpus job with one and two
one-CPU actors against the local job, and `serve --ray` with one and two replicas against the
plain server, under the same closed-loop load. The cluster is two one-CPU Ray nodes started
here (`embedserve.testing_ray`), so "two" uses both cores.

    python benchmarks/ray_scaling.py            # 3000 mixed texts; 600 requests per serve row
    python benchmarks/ray_scaling.py --quick    # 800 texts; 200 requests

Writes benchmarks/results/ray-scaling.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from embedserve.bench.loadgen import LoadSettings, run_load
from embedserve.bench.workloads import generate_texts
from embedserve.settings import default_cache_dir
from embedserve.testing import ServerProcess, free_port, launch
from embedserve.testing_ray import (
    UNAUTHENTICATED,
    RayCluster,
    processes_titled,
    start_ray_cluster,
)

RESULTS = Path(__file__).parent / "results"
SUMMARY = re.compile(r"in ([\d.]+)s: \d+ texts/s, (\d+) tokens/s")
CONCURRENCY = 8
SHARD = 100  # texts per shard: many shards, so the steady rate is measured over many
BATCHED = 16  # texts per request in the second serve workload
REPLICA_TITLE = b"ServeReplica:embedserve:EmbedReplica"


def run_job(corpus: Path, output: Path, workers: int, *ray: str) -> dict[str, float]:
    """One `embedserve embed` process: its summary's tokens/s, its whole wall time, and the
    steady rate (start-up excluded) from when its shard files were renamed into place."""
    job = ["embed", str(corpus), "-o", str(output), "--quiet", "--shard-size", str(SHARD)]
    command = [sys.executable, "-m", "embedserve", *job, "--cache-dir", str(default_cache_dir())]
    started = time.monotonic()
    done = subprocess.run(
        [*command, *ray], capture_output=True, text=True, env=UNAUTHENTICATED, check=True
    )
    wall = time.monotonic() - started
    found = SUMMARY.search(done.stdout)
    assert found, done.stdout + done.stderr[-2000:]
    tokens_per_s, job_s = float(found[2]), float(found[1])
    return {
        "tokens_per_s": tokens_per_s,
        "job_s": job_s,
        "wall_s": wall,
        "steady_tokens_per_s": steady_rate(output, tokens_per_s * job_s, workers),
    }


def steady_rate(output: Path, tokens: float, workers: int) -> float:
    """Tokens/s from the `workers`-th finished shard to the last: every worker is past its
    start-up by then, and the shards are alike (one seeded workload, cut in equal counts)."""
    finished = sorted(path.stat().st_mtime for path in output.glob("part-*.parquet"))
    per_shard = tokens / len(finished)
    return (len(finished) - workers) * per_shard / (finished[-1] - finished[workers - 1])


def serve_load(
    server: ServerProcess, texts: list[str], requests: int, inputs: int
) -> dict[str, Any]:
    """The closed-loop load of every serve row, `inputs` texts per request."""
    settings = LoadSettings(
        url=server.base_url,
        texts=texts,
        concurrency=CONCURRENCY,
        requests=requests,
        inputs_per_request=inputs,
        warmup=20,
        progress=False,
    )
    report = run_load(settings, "serve")
    return {
        "requests_per_s": report.requests_per_s,
        "inputs_per_s": report.inputs_per_s,
        "p50_ms": report.latency_ms["p50"],
        "p99_ms": report.latency_ms["p99"],
        "errors": report.errors,
    }


def replicas_rss_mb() -> list[float]:
    """The resident memory of each live Ray Serve replica process, in MiB."""
    found = []
    for pid in processes_titled(REPLICA_TITLE):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            found.append(int(status.split("VmRSS:")[1].split()[0]) / 1024)
        except (OSError, IndexError):
            continue
    return sorted(found)


def start(args: list[str], log: Path, wait_for: str | None = None) -> ServerProcess:
    port = free_port()
    command = [sys.executable, "-m", "embedserve", "serve", "--port", str(port), *args]
    command += ["--cache-dir", str(default_cache_dir())]
    server = launch(command, log, f"http://127.0.0.1:{port}", env=UNAUTHENTICATED)
    deadline = time.monotonic() + 300
    while wait_for and wait_for not in server.log():
        if time.monotonic() > deadline or server.process.poll() is not None:
            server.stop()
            raise RuntimeError(server.log()[-3000:])
        time.sleep(0.5)
    return server


def measure(cluster: RayCluster, work: Path, count: int, requests: int) -> dict[str, Any]:
    texts = generate_texts("mixed", count)
    corpus = work / "corpus.txt"
    corpus.write_text("".join(text + "\n" for text in texts), encoding="utf-8")
    ray = ["--ray", cluster.address]
    jobs = {
        "local job (2 threads)": run_job(corpus, work / "local", 1),
        "Ray job, 1 actor x 1 CPU": run_job(corpus, work / "ray1", 1, *ray, "--num-actors", "1"),
        "Ray job, 2 actors x 1 CPU": run_job(corpus, work / "ray2", 2, *ray, "--num-actors", "2"),
    }
    serves: dict[str, Any] = {}
    rows = [
        ("plain server (2 threads)", [], None),
        ("Ray Serve, 1 replica x 1 CPU", [*ray, "--replicas", "1"], "behind Ray's proxy"),
        ("Ray Serve, 2 replicas x 1 CPU", [*ray, "--replicas", "2"], "behind Ray's proxy"),
    ]
    for label, args, wait_for in rows:
        server = start(args, work / f"{len(serves)}.log", wait_for)
        try:
            serves[label] = {
                "1 text": serve_load(server, texts, requests, 1),
                f"{BATCHED} texts": serve_load(server, texts, requests // 4, BATCHED),
                "replica_rss_mb": replicas_rss_mb(),
            }
        finally:
            server.stop(timeout_s=60)
    return {"texts": count, "requests": requests, "jobs": jobs, "serve": serves}


def render(result: dict[str, Any]) -> list[str]:
    jobs, serves = result["jobs"], result["serve"]
    one_actor = jobs["Ray job, 1 actor x 1 CPU"]
    local = jobs["local job (2 threads)"]
    lines = [
        f"### The corpus job: {result['texts']} mixed texts, bundled model, onnx, "
        f"shards of {SHARD}, two one-CPU Ray nodes on this 2-core machine",
        "",
        "whole job = the summary's tokens/s (start-up and model load included); steady = from "
        "the moment every worker has finished a shard to the last shard",
        "",
        "| | tokens/s, whole job | vs 1 actor | vs local | tokens/s, steady | vs 1 actor | "
        "vs local | job s | process wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, row in jobs.items():
        rate, steady = row["tokens_per_s"], row["steady_tokens_per_s"]
        lines.append(
            f"| {label} | {rate:,.0f} | {rate / one_actor['tokens_per_s']:.2f}x | "
            f"{rate / local['tokens_per_s']:.2f}x | {steady:,.0f} | "
            f"{steady / one_actor['steady_tokens_per_s']:.2f}x | "
            f"{steady / local['steady_tokens_per_s']:.2f}x | "
            f"{row['job_s']:.1f} | {row['wall_s']:.1f} |"
        )
    for workload, requests in (("1 text", result["requests"]), (f"{BATCHED} texts", None)):
        one = serves["Ray Serve, 1 replica x 1 CPU"][workload]["inputs_per_s"]
        lines += [
            "",
            f"### Serving: closed loop, {CONCURRENCY} clients, {workload} (mixed) per request, "
            f"{requests or result['requests'] // 4} requests per row (the load generator "
            "shares the 2 cores)",
            "",
            "| | texts/s | vs 1 replica | p50 ms | p99 ms | errors | replica RSS MiB |",
            "|---|---:|---:|---:|---:|---|---|",
        ]
        for label, rows in serves.items():
            row, rss = rows[workload], rows["replica_rss_mb"]
            lines.append(
                f"| {label} | {row['inputs_per_s']:,.1f} | {row['inputs_per_s'] / one:.2f}x | "
                f"{row['p50_ms']:.0f} | {row['p99_ms']:.0f} | {row['errors'] or 'none'} | "
                f"{', '.join(f'{mib:.0f}' for mib in rss) or '-'} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count, requests = (800, 200) if args.quick else (3000, 600)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        cluster = start_ray_cluster(work / "ray.log")
        try:
            result = measure(cluster, work, count, requests)
        finally:
            cluster.stop()
    lines = render(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray-scaling.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "ray-scaling.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
