"""`embedserve bench`: closed- or open-loop load against any embeddings URL; a table, JSON, and
(with `--plot`) a chart of a concurrency sweep."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from embedserve.bench.report import Report


def _concurrencies(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a number or a comma-separated list: {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrency must be at least 1")
    return values


def add_bench_command(commands: Any) -> None:
    """`embedserve bench` and its flags."""
    bench = commands.add_parser(
        "bench",
        help="load-test any OpenAI-compatible embeddings URL",
        description="Closed-loop (N concurrent clients) or open-loop (Poisson arrivals) load "
        "against an embeddings URL; prints a Markdown table and writes JSON.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    bench.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    bench.add_argument("--model", default=None, help="`model` field to send (omitted if unset)")
    bench.add_argument("--mode", choices=("closed", "open"), default="closed")
    bench.add_argument(
        "--concurrency",
        type=_concurrencies,
        default=[8],
        help="closed loop: clients; a comma-separated list (1,4,16) runs one after the other",
    )
    bench.add_argument("--rate", type=float, default=10.0, help="open loop: requests per second")
    bench.add_argument(
        "--requests", type=int, default=1000, help="requests to send (after warm-up)"
    )
    bench.add_argument("--inputs-per-request", type=int, default=1)
    bench.add_argument(
        "--workload", default="mixed", help="short | mixed | long | file:PATH (one text per line)"
    )
    bench.add_argument("--texts", type=int, default=2000, help="distinct texts generated")
    bench.add_argument("--encoding", choices=("float", "base64"), default="float")
    bench.add_argument("--warmup", type=int, default=20, help="requests sent before measuring")
    bench.add_argument("--timeout", type=float, default=60.0, help="per-request timeout, seconds")
    bench.add_argument("--api-key", default=None)
    bench.add_argument(
        "--rss-every", type=int, default=0, help="soak: sample server RSS every N requests"
    )
    bench.add_argument("--server-pid", type=int, default=None, help="read RSS from /proc/PID")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--label", default=None, help="name of the run in the table")
    bench.add_argument("--json", default=None, metavar="PATH", help="write the report here")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.add_argument(
        "--plot",
        default=None,
        metavar="PNG",
        help="draw texts/s and p50/p99 latency against concurrency (needs embedserve[bench])",
    )


def run_bench(args: argparse.Namespace) -> int:
    """Run the load (once per concurrency), print the table, write JSON and the plot."""
    from embedserve.bench.report import markdown_table  # here: aiohttp only when bench runs
    from embedserve.bench.workloads import load_texts

    texts = load_texts(args.workload, args.texts, seed=args.seed)
    sweep = args.concurrency if args.mode == "closed" else args.concurrency[:1]
    reports = [_run_one(args, texts, concurrency, len(sweep) > 1) for concurrency in sweep]
    print(markdown_table(reports))
    for report in reports:
        if report.rss_mb:
            rss = report.rss_mb
            print(f"RSS MiB ({report.label}): first {rss[0]}, last {rss[-1]}, max {max(rss)}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        data: Any = reports[0].to_dict() if len(reports) == 1 else [r.to_dict() for r in reports]
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    if args.plot:
        from embedserve.bench.plots import plot_sweep

        title = f"{args.url}: {args.workload} texts, {args.inputs_per_request} per request"
        print(f"plot: {plot_sweep({args.label or 'server': reports}, Path(args.plot), title)}")
    return 0 if all(report.ok for report in reports) else 1


def _run_one(
    args: argparse.Namespace, texts: list[str], concurrency: int, in_sweep: bool
) -> Report:
    from embedserve.bench.loadgen import LoadSettings, run_load

    settings = LoadSettings(
        url=args.url,
        texts=texts,
        model=args.model,
        mode=args.mode,
        concurrency=concurrency,
        rate=args.rate,
        requests=args.requests,
        inputs_per_request=args.inputs_per_request,
        encoding=args.encoding,
        warmup=args.warmup,
        timeout_s=args.timeout,
        api_key=args.api_key,
        rss_every=args.rss_every,
        server_pid=args.server_pid,
        progress=not args.no_progress,
        seed=args.seed,
    )
    load = f"c={concurrency}" if args.mode == "closed" else f"rate={args.rate}/s"
    label = (
        f"{args.label} {load}"
        if args.label
        else f"{args.workload} {load} x{args.inputs_per_request}"
    )
    return run_load(settings, label)
