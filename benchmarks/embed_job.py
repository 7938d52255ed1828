"""`embedserve embed` measured: its tokens/s against the raw executor on the same texts (same
run, interleaved), and the peak RSS of whole job processes as the corpus grows (fake backend:
the job's own memory, without a model's; and the real model on the throughput corpus).

    python benchmarks/embed_job.py                # 4000 mixed texts; RSS at 100k and 1M texts
    python benchmarks/embed_job.py --quick        # 1000 texts; RSS at 20k and 200k

Writes benchmarks/results/embed-job.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from inprocess import bench_raw_backend

from embedserve.bench.workloads import generate_texts
from embedserve.jobs.readers import Fields
from embedserve.jobs.run import JobOptions, run_job
from embedserve.settings import ModelSettings, default_cache_dir

RESULTS = Path(__file__).parent / "results"
PEAK_RSS = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
)


def write_corpus(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(text + "\n" for text in texts), encoding="utf-8")
    return path


def job_tokens_per_s(corpus: Path, work: Path, run: int) -> float:
    """One whole job in-process (model load excluded, as the summary reports it)."""
    options = JobOptions((str(corpus),), work / f"job-{run}", Fields(), quiet=True)
    summary = run_job(ModelSettings(truncate="END"), options, default_cache_dir())
    return summary.tokens / summary.seconds


def peak_rss_mb(corpus: Path, output: Path, backend: str) -> float:
    """The peak resident memory of an `embedserve embed` process, in MiB."""
    job = ["embed", str(corpus), "-o", str(output), "--quiet", "--backend", backend]
    command = [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "embedserve", *job]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    count, sizes = (1000, (20_000, 200_000)) if args.quick else (4000, (100_000, 1_000_000))
    mixed = generate_texts("mixed", count)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        corpus = write_corpus(work / "mixed.txt", mixed)
        raw, job, tokens = [], [], _tokens(mixed)
        for run in range(args.repeats):  # interleaved: the machine's drift hits both
            measured = bench_raw_backend(mixed, mixed[:1], tokens, 1, default_cache_dir())
            raw.append(measured["tokens_per_s"])
            job.append(job_tokens_per_s(corpus, work, run))
        rss = {"real model": {count: peak_rss_mb(corpus, work / "rss-real", "onnx")}}
        rss["fake backend"] = {}
        for size in sizes:
            short = write_corpus(work / f"short-{size}.txt", generate_texts("short", size))
            rss["fake backend"][size] = peak_rss_mb(short, work / f"rss-{size}", "fake")
    result: dict[str, Any] = {
        "texts": count,
        "raw_tokens_per_s": raw,
        "job_tokens_per_s": job,
        "ratio": statistics.median(job) / statistics.median(raw),
        "peak_rss_mb": rss,
    }
    lines = render(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "embed-job.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "embed-job.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("\n".join(lines))


def _tokens(texts: list[str]) -> int:
    from embedserve.models import bundled_model_path, load_model_spec
    from embedserve.tokenization import TextTokenizer

    tokenizer = TextTokenizer(load_model_spec(bundled_model_path()))
    return sum(len(ids) for ids in tokenizer.encode(texts))


def render(result: dict[str, Any]) -> list[str]:
    raw, job = result["raw_tokens_per_s"], result["job_tokens_per_s"]
    lines = [
        f"### `embedserve embed`: {result['texts']} mixed texts, bundled model, onnx, "
        f"{len(raw)} interleaved runs",
        "",
        "| | tokens/s (median) | runs |",
        "|---|---:|---|",
        f"| raw executor (tokenize, batch, forward; no queue) | {statistics.median(raw):,.0f} | "
        + ", ".join(f"{v:,.0f}" for v in raw)
        + " |",
        f"| `embedserve embed` (reads, embeds, writes Parquet) | {statistics.median(job):,.0f} | "
        + ", ".join(f"{v:,.0f}" for v in job)
        + " |",
        "",
        f"job / raw: **{result['ratio']:.2f}x**",
        "",
        "| peak RSS of the job process | texts | MiB |",
        "|---|---:|---:|",
    ]
    for kind, by_size in result["peak_rss_mb"].items():
        for size, mib in by_size.items():
            lines.append(f"| {kind} | {int(size):,} | {mib:,.0f} |")
    return lines


if __name__ == "__main__":
    main()
