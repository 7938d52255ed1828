"""`embedserve embed`'s command line: the job's own flags plus the model flags of `serve` (one
model: `--model`, or a models file with one entry; every per-model setting and limit)."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Any

from embedserve.errors import EmbedServeError
from embedserve.settings import ModelSettings, serve_options, settings_from_sources
from embedserve.settings.declare import Option
from embedserve.settings.flags import add_setting_flags
from embedserve.settings.model import BatchingLimits

MODEL_INPUTS = {"model", "models_file", "served_model_name", "cache_dir"}
DTYPES = ("float", "float16", "bfloat16", "int8", "uint8", "binary", "ubinary")


def model_options() -> list[Option]:
    """The `serve` flags that say which model and how it runs."""
    return [
        option
        for option in serve_options()
        if option.owner in (ModelSettings, BatchingLimits) or option.name in MODEL_INPUTS
    ]


def add_embed_command(commands: Any) -> None:
    """The `embed` subcommand and its flags."""
    embed = commands.add_parser(
        "embed",
        help="embed a corpus to a resumable Parquet dataset, in-process (no HTTP)",
        description="Embed every text of the inputs (.txt: one text per line, .jsonl, .csv, "
        ".parquet files, directories or globs; `-`: text lines on stdin) into numbered Parquet "
        "shards under --output. Re-running with the same arguments resumes: finished shards "
        "are kept, the rest is done.",
    )
    embed.add_argument("inputs", nargs="+", metavar="INPUT")
    embed.add_argument("--output", "-o", required=True, help="output directory")
    embed.add_argument("--text-field", default="text", help="JSONL/CSV/Parquet: the text")
    embed.add_argument(
        "--id-field", default=None, help="the id (default: the record's position, from 0)"
    )
    embed.add_argument(
        "--keep-fields", default="", help="comma-separated fields copied into the output"
    )
    embed.add_argument("--shard-size", type=int, default=10_000, help="records per shard")
    embed.add_argument("--input-type", default=None, help="query or document: the model's prompt")
    embed.add_argument("--prompt-name", default=None, help="a prompt the model declares")
    embed.add_argument("--dimensions", type=int, default=None, help="matryoshka output size")
    embed.add_argument("--output-dtype", choices=DTYPES, default=None, help="default: float32")
    embed.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    ray = embed.add_argument_group("Ray (pip install 'embedserve[ray]')")
    ray.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run on a Ray cluster (`auto`, `HOST:PORT`, `ray://...`; no address: a local Ray)",
    )
    ray.add_argument("--num-actors", type=int, default=1, help="engines in the actor pool")
    ray.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs each engine gets")
    ray.add_argument("--gpus-per-actor", type=float, default=0.0, help="GPUs each engine gets")
    ray.add_argument(
        "--actor-start-timeout",
        type=int,
        default=600,
        metavar="SECONDS",
        help="wait this long for every actor to load the model before the first shard "
        "(0: start on the first actor ready)",
    )
    add_setting_flags(embed, model_options())


def run_embed(args: argparse.Namespace) -> int:
    """Run the job; 0 when complete, 2 on a usage or input error."""
    if importlib.util.find_spec("pyarrow") is None:
        print("embedserve embed needs pyarrow: pip install 'embedserve[jobs]'", file=sys.stderr)
        return 2
    from embedserve.jobs.readers import Fields, InputError
    from embedserve.jobs.run import JobError, JobOptions, run_job

    given = {option.name: getattr(args, option.name, None) for option in model_options()}
    if given.get("truncate") is None and "EMBEDSERVE_TRUNCATE" not in os.environ:
        given["truncate"] = "END"  # a corpus is cut as sentence-transformers cuts it
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr)
    try:
        settings = settings_from_sources({k: v for k, v in given.items() if v is not None})
        if len(settings.models) != 1:
            raise JobError("embed runs one model: give one --model, or one models-file entry")
        keep = tuple(name for name in args.keep_fields.split(",") if name)
        options = JobOptions(
            inputs=tuple(args.inputs),
            output=Path(args.output).expanduser(),
            fields=Fields(text=args.text_field, id=args.id_field, keep=keep),
            shard_size=args.shard_size,
            input_type=args.input_type,
            prompt_name=args.prompt_name,
            dimensions=args.dimensions,
            output_dtype=None if args.output_dtype == "float" else args.output_dtype,
            quiet=args.quiet,
        )
        if args.ray is None:
            summary = run_job(settings.models[0], options, settings.cache_dir)
        else:
            if (
                args.num_actors < 1
                or args.cpus_per_actor <= 0
                or args.gpus_per_actor < 0
                or args.actor_start_timeout < 0
            ):
                raise JobError(
                    "--num-actors must be at least 1, --cpus-per-actor above 0, and "
                    "--gpus-per-actor and --actor-start-timeout at least 0"
                )
            try:
                import ray  # noqa: F401
            except ImportError:
                raise JobError("--ray needs Ray: pip install 'embedserve[ray]'") from None
            from embedserve.jobs.ray_job import RayOptions, run_ray_job

            cluster = RayOptions(
                address=None if args.ray == "local" else args.ray,
                num_actors=args.num_actors,
                cpus_per_actor=args.cpus_per_actor,
                gpus_per_actor=args.gpus_per_actor,
                actor_start_timeout_s=args.actor_start_timeout,
            )
            summary = run_ray_job(settings.models[0], options, settings.cache_dir, cluster)
    except (InputError, JobError, EmbedServeError, ValueError, OSError) as error:
        print(f"embedserve embed: {error}", file=sys.stderr)
        return 2
    print(summary.line(options.output))
    return 0
