"""`embedserve eval`'s command line; MTEB is imported only when the command runs."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Any

from embedserve.errors import EmbedServeError

LAYOUT = """task folders (a --tasks entry that is a directory):
  task.json   {"name": "MyTask", "type": "Retrieval" | "Classification" | "STS"}; optionally
              "main_score", "splits" (["test"]), "languages" (["eng-Latn"]),
              and for STS "min_score" / "max_score" (0 and 5)
  STS             <split>.jsonl: {"sentence1", "sentence2", "score"} per line
  Classification  train.jsonl and <split>.jsonl: {"text", "label"} per line
  Retrieval       corpus.jsonl ({"_id", "text", "title"?}), queries.jsonl ({"_id", "text"}),
                  qrels/<split>.tsv (query-id, corpus-id, score; a header row): BEIR's layout

MTEB task names take their data from the Hugging Face hub, or offline (HF_HUB_OFFLINE=1,
HF_DATASETS_OFFLINE=1) from the datasets cache, or from --datasets DIR holding the dataset's
repository at DIR/<its hub path> (e.g. DIR/mteb/stsbenchmark-sts)."""


def add_eval_command(commands: Any) -> None:
    """The `eval` subcommand and its flags."""
    parser = commands.add_parser(
        "eval",
        help="run MTEB tasks through a served URL, in-process, or both side by side",
        description="Evaluate a model with MTEB (pip install 'embedserve[eval]'): through any "
        "OpenAI-compatible URL, in this process with embedserve's engine, or both, and print "
        "each task's main score and the difference. MTEB's result files are written under "
        "OUTPUT/server and OUTPUT/in-process, with summary.json and summary.md.",
        epilog=LAYOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--tasks", nargs="+", required=True, metavar="TASK", help="MTEB task names, task "
        "folders, .py files defining MTEB tasks, or package.module[:TaskClass]"
    )  # fmt: skip
    parser.add_argument("--url", default=None, help="the server; without it: in-process only")
    parser.add_argument("--model", default=None, help="model sent to --url (default: its first)")
    key = os.environ.get("EMBEDSERVE_API_KEY")
    parser.add_argument("--api-key", default=key, help="default: $EMBEDSERVE_API_KEY")
    parser.add_argument(
        "--reference", default=None, metavar="in-process|DIR",
        help="compare with the model in-process, or with MTEB result files under DIR",
    )  # fmt: skip
    parser.add_argument("--output", "-o", default="eval-results", help="results folder")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per request")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--datasets", default=None, help="local copies of hub datasets")
    parser.add_argument("--resume", action="store_true", help="keep results already written")
    parser.add_argument(
        "--max-diff", type=float, default=1e-4, help="comparing: exit 1 when a score differs more"
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    local = parser.add_argument_group("in-process model")
    local.add_argument("--model-dir", default=None, help="model directory (default: bundled)")
    local.add_argument("--backend", choices=("auto", "onnx", "torch", "openvino"), default="auto")
    local.add_argument("--trust-remote-code", action="store_true")
    local.add_argument("--cache-dir", default=None, help="exported artefacts (as `serve`)")


def run_eval_command(args: argparse.Namespace) -> int:
    """0 when done (and within --max-diff), 1 past it or on a server error, 2 on bad input."""
    if importlib.util.find_spec("mteb") is None:
        print("embedserve eval needs MTEB: pip install 'embedserve[eval]'", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from embedserve.evaluation.client import ClientOptions, ServerError
    from embedserve.evaluation.run import IN_PROCESS, EvalOptions, run_eval
    from embedserve.settings import resolve_cache_dir

    if args.reference not in (None, IN_PROCESS) and not Path(args.reference).is_dir():
        return _usage(f"--reference {args.reference}: neither `in-process` nor a folder")
    if args.reference is not None and args.url is None:
        return _usage("--reference compares with a served run: give --url too")
    client = None
    if args.url is not None:
        client = ClientOptions(
            url=args.url,
            model=args.model,
            api_key=args.api_key,
            batch_size=args.batch_size,
            concurrency=args.concurrency,
        )
    settings: dict[str, Any] = {"backend": args.backend}
    if args.trust_remote_code:
        settings["trust_remote_code"] = True
    options = EvalOptions(
        tasks=tuple(args.tasks),
        output=Path(args.output).expanduser(),
        client=client,
        reference=args.reference,
        model_dir=Path(args.model_dir).expanduser() if args.model_dir else None,
        engine_settings=settings,
        cache_dir=resolve_cache_dir(args.cache_dir),
        datasets=Path(args.datasets) if args.datasets else None,
        resume=args.resume,
        quiet=args.quiet,
    )
    try:
        report = run_eval(options)
    except ServerError as exc:
        print(f"embedserve eval: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError, EmbedServeError) as exc:
        return _usage(str(exc))
    print(report.table())
    print(f"results: {options.output}/ (MTEB result files per run, summary.json, summary.md)")
    if len(report.scores) < 2:
        return 0
    worst = report.max_difference()
    passed = worst <= args.max_diff
    print(f"{'PASS' if passed else 'FAIL'}: largest difference {worst:.2e} vs {args.max_diff:g}")
    return 0 if passed else 1


def _usage(message: str) -> int:
    print(f"embedserve eval: {message}", file=sys.stderr)
    return 2
