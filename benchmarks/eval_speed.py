"""`embedserve eval`'s speed on this machine: the client's texts/s per batch size and requests
in flight against a real server, and one whole MTEB retrieval task (documents and queries from
this Python's docstrings, `retrieval_sample.py`) through the server and in-process. Writes
benchmarks/results/eval-speed.json and eval-speed.md.

    .venv/bin/python benchmarks/eval_speed.py [--pairs 1200] [--texts 3000]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from retrieval_sample import docstring_pairs
from servers import RESULTS, embedserve_server

from embedserve.evaluation.client import ClientOptions, EmbeddingsClient
from embedserve.evaluation.run import EvalOptions, run_eval
from embedserve.settings import default_cache_dir

SETTINGS = [(16, 1), (16, 4), (64, 1), (64, 4), (256, 1), (256, 4)]


def write_task(folder: Path, pairs: list[tuple[str, str]]) -> Path:
    """A BEIR-layout task folder: each docstring's first line finds the rest of it."""
    folder.mkdir(parents=True)
    (folder / "task.json").write_text(json.dumps({"name": "StdlibDocs", "type": "Retrieval"}))
    corpus = [{"_id": f"d{i}", "text": document} for i, (_, document) in enumerate(pairs)]
    queries = [{"_id": f"q{i}", "text": query} for i, (query, _) in enumerate(pairs)]
    for name, rows in (("corpus", corpus), ("queries", queries)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "qrels").mkdir()
    qrels = "".join(f"q{i}\td{i}\t1\n" for i in range(len(pairs)))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return folder


def measure(args: argparse.Namespace) -> dict[str, Any]:
    pairs = docstring_pairs(args.pairs)
    texts = [text for pair in pairs for text in pair][: args.texts]
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "texts": len(texts),
        "pairs": len(pairs),
        "client": [],
    }
    with tempfile.TemporaryDirectory() as work, embedserve_server(default_cache_dir()) as server:
        url = server.embeddings_url.removesuffix("/v1/embeddings")
        for batch_size, concurrency in SETTINGS:
            options = ClientOptions(url, batch_size=batch_size, concurrency=concurrency)
            client = EmbeddingsClient(options)
            client.embed(texts[:256])  # warm
            started = time.perf_counter()
            client.embed(texts)
            seconds = time.perf_counter() - started
            row = {"batch_size": batch_size, "concurrency": concurrency}
            result["client"].append(row | {"texts_per_s": len(texts) / seconds})
            print(f"batch {batch_size:>3} x {concurrency}: {len(texts) / seconds:7.0f} texts/s")
        task = write_task(Path(work) / "task", pairs)
        for reference in (None, "in-process"):
            options = EvalOptions(
                tasks=(str(task),),
                output=Path(work) / f"out-{reference}",
                client=ClientOptions(url),
                reference=reference,
                cache_dir=default_cache_dir(),
                quiet=True,
            )
            started = time.perf_counter()
            report = run_eval(options)
            key = "with_in_process" if reference else "server_only"
            result[key] = {"seconds": time.perf_counter() - started, "scores": report.scores}
            print(f"eval ({key}): {result[key]['seconds']:.1f} s, {report.scores}")
    return result


def render(result: dict[str, Any]) -> str:
    lines = [
        f"Machine: {result['machine']}. Client rows: {result['texts']} docstring texts against "
        "`embedserve serve` (bundled model, ONNX).",
        "",
        "| batch size | in flight | texts/s |",
        "| ---: | ---: | ---: |",
    ]
    for row in result["client"]:
        lines.append(f"| {row['batch_size']} | {row['concurrency']} | {row['texts_per_s']:.0f} |")
    both = result["with_in_process"]
    server = both["scores"]["server"]["StdlibDocs"]
    local = both["scores"]["in-process"]["StdlibDocs"]
    lines += [
        "",
        f"Whole task (StdlibDocs retrieval, {result['pairs']} queries and documents, "
        f"nDCG@10 {server:.4f} served, {local:.4f} in-process, difference {server - local:+.1e}):",
        f"{result['server_only']['seconds']:.1f} s through the server alone, "
        f"{both['seconds']:.1f} s with the in-process reference (model load included).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1200, help="queries (and documents)")
    parser.add_argument("--texts", type=int, default=3000, help="texts of the client rows")
    result = measure(parser.parse_args())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "eval-speed.json").write_text(json.dumps(result, indent=2) + "\n")
    markdown = render(result)
    (RESULTS / "eval-speed.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
