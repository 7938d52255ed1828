"""`embedserve` command line: thin, no logic beyond parsing."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import embedserve
from embedserve.bench.command import add_bench_command, run_bench
from embedserve.errors import EmbedServeError
from embedserve.evaluation.command import add_eval_command, run_eval_command
from embedserve.jobs.command import add_embed_command, run_embed
from embedserve.ray_replicas import add_ray_flags, replica_options, serve_on_ray
from embedserve.settings import (
    PRECISIONS,
    resolve_cache_dir,
    serve_options,
    settings_from_sources,
)
from embedserve.settings.flags import add_setting_flags


def build_parser() -> argparse.ArgumentParser:
    """The full parser; `embedserve --help` also lists every `serve` option."""
    serve = argparse.ArgumentParser(add_help=False)
    add_setting_flags(serve, serve_options())
    parser = argparse.ArgumentParser(
        prog="embedserve",
        description="OpenAI-compatible text-embeddings server.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="serve options:\n" + _options_text(serve),
    )
    parser.add_argument("--version", action="version", version=embedserve.__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_command = commands.add_parser(
        "serve",
        parents=[serve],
        help="serve the OpenAI embeddings API",
        description="Serve the OpenAI embeddings API over HTTP. "
        "Every flag but the Ray ones can also be set as EMBEDSERVE_<FLAG>.",
    )
    add_ray_flags(serve_command)
    add_bench_command(commands)
    _add_verify_command(commands)
    _add_export_command(commands)
    add_embed_command(commands)
    add_eval_command(commands)
    return parser


def _run_serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:  # the environment is read now, for `serve` only
        ray = replica_options(args)  # and takes the Ray flags out of `args`
        settings = settings_from_sources(vars(args))
        if ray is not None:
            ray.check()
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    try:
        if ray is None:
            from embedserve.server import serve

            return serve(settings)
        if importlib.util.find_spec("ray") is None:
            print("embedserve: --ray needs Ray: pip install 'embedserve[ray]'", file=sys.stderr)
            return 2
        return serve_on_ray(settings, ray)
    except EmbedServeError as exc:
        print(f"embedserve: {exc.message}", file=sys.stderr)
        return 1
    except ValueError as exc:  # e.g. one served name used by two models
        print(f"embedserve: {exc}", file=sys.stderr)
        return 2


def _add_verify_command(commands: Any) -> None:
    verify = commands.add_parser(
        "verify",
        help="compare served vectors with sentence-transformers on a built-in sample",
        description="Embed a built-in sample of queries and passages with the reference "
        "(sentence-transformers, else transformers with the declared pooling) and with a served "
        "URL or the engine in-process; print per-text cosine, max abs difference and retrieval "
        "top-1 agreement. Exits 1 below --min-cosine.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    verify.add_argument("--model", default=None, help="model directory (default: the bundled one)")
    verify.add_argument("--url", default=None, help="a running server; default: in-process")
    verify.add_argument("--served-model", default=None, help="`model` to send to --url")
    verify.add_argument("--backend", choices=("onnx", "torch"), default="onnx")
    verify.add_argument("--api-key", default=None)
    verify.add_argument("--trust-remote-code", action="store_true")
    verify.add_argument(
        "--cache-dir",
        default=None,
        help="in-process: default $EMBEDSERVE_CACHE_DIR, else $XDG_CACHE_HOME/embedserve",
    )
    verify.add_argument("--min-cosine", type=float, default=0.9999)
    verify.add_argument(
        "--max-score-diff",
        type=float,
        default=1e-4,
        help="a reranker passes when no score differs from CrossEncoder.predict by more",
    )


def _run_verify(args: argparse.Namespace) -> int:
    from embedserve.models import bundled_model_path, load_model_spec
    from embedserve.verify import render, verify

    path = Path(args.model).expanduser() if args.model else None
    spec = load_model_spec(path or bundled_model_path(), trust_remote_code=args.trust_remote_code)
    if spec.score_head is not None:
        return _verify_reranker(args, spec, path)
    report = verify(
        Path(args.model).expanduser() if args.model else None,
        url=args.url,
        served_model=args.served_model,
        backend=args.backend,
        api_key=args.api_key,
        trust_remote_code=args.trust_remote_code,
        cache_dir=resolve_cache_dir(args.cache_dir),
    )
    print(render(report))
    passed = report.min_cosine >= args.min_cosine
    print(
        f"{'PASS' if passed else 'FAIL'}: min cosine {report.min_cosine:.7f} vs {args.min_cosine}"
    )
    return 0 if passed else 1


def _verify_reranker(args: argparse.Namespace, spec: Any, path: Path | None) -> int:
    from embedserve.settings import ModelSettings
    from embedserve.verify_scores import render_scores, verify_scores

    settings = ModelSettings.model_validate(
        {"path": path, "backend": args.backend, "trust_remote_code": args.trust_remote_code}
    )
    report = verify_scores(
        spec,
        settings,
        url=args.url,
        served_model=args.served_model,
        api_key=args.api_key,
        cache_dir=resolve_cache_dir(args.cache_dir),
    )
    print(render_scores(report))
    passed = report.max_abs_diff <= args.max_score_diff
    verdict = "PASS" if passed else "FAIL"
    print(f"{verdict}: max score difference {report.max_abs_diff:.2e} vs {args.max_score_diff}")
    return 0 if passed else 1


def _add_export_command(commands: Any) -> None:
    export = commands.add_parser(
        "export",
        help="build the cached ONNX / OpenVINO artefact of a model and print its accuracy",
        description="Export a model directory to an optimised artefact in the cache (the one "
        "`serve` then uses) and print its accuracy against fp32 on the built-in sample.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    export.add_argument("--model", default=None, help="model directory (default: the bundled one)")
    export.add_argument("--format", choices=("onnx", "openvino"), default="onnx")
    export.add_argument("--precision", "--dtype", choices=PRECISIONS, default="fp32")
    export.add_argument(
        "--cache-dir",
        default=None,
        help="default: $EMBEDSERVE_CACHE_DIR, else $XDG_CACHE_HOME/embedserve",
    )
    export.add_argument("--trust-remote-code", action="store_true")


def _run_export(args: argparse.Namespace) -> int:
    from embedserve.export import export, render

    try:
        report = export(
            Path(args.model).expanduser() if args.model else None,
            fmt=args.format,
            precision=args.precision,
            cache_dir=resolve_cache_dir(args.cache_dir),
            trust_remote_code=args.trust_remote_code,
        )
    except ValueError as exc:
        print(f"embedserve: {exc}", file=sys.stderr)
        return 2
    print(render(report, args.format, args.precision))
    return 0


def _options_text(parser: argparse.ArgumentParser) -> str:
    text = parser.format_help()
    return text.split("\n\n", 1)[1] if "\n\n" in text else text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `embedserve` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "bench":
        return run_bench(args)
    if args.command == "verify":
        return _run_verify(args)
    if args.command == "export":
        return _run_export(args)
    if args.command == "embed":
        return run_embed(args)
    if args.command == "eval":
        return run_eval_command(args)
    return _run_serve(parser, args)
