"""`embedserve embed --ray`: the corpus job on a Ray cluster, with the local job's shards,
schema and manifest, so either resumes the other's output.

The driver plans the shards (one pass over the inputs), keeps the finished ones, and gives the
rest to Ray Data: one row per shard, `map_batches` over an actor pool of engines
(`ShardWorker`), each reading its shard's records from the shared inputs, embedding them and
writing the shard file (staged and renamed) to the shared output. The output directory and the
inputs must be reachable from every node (a shared filesystem).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedserve.backends.base import thread_limits_env
from embedserve.jobs.output import (
    check_or_write_manifest,
    finished_shards,
    hold_output,
    remove_partials,
    save_manifest,
    write_shard,
)
from embedserve.jobs.plan import Piece, ShardPlan, plan_shards, read_shard
from embedserve.jobs.progress import Progress
from embedserve.jobs.readers import Fields, expand_inputs
from embedserve.jobs.run import JobError, JobOptions, JobSummary, embed_shard, job_identity
from embedserve.runner import ModelRunner
from embedserve.settings import ModelSettings


@dataclass(frozen=True)
class RayOptions:
    """Where the cluster is and how the actor pool is shaped."""

    address: str | None = None  # None: start a local Ray instance
    num_actors: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    # wait this long for the whole pool to load its model before the first shard is handed out,
    # so that a slow-starting actor still gets its share; 0: start on the first actor ready
    actor_start_timeout_s: int = 600


class ShardWorker:
    """One engine per Ray actor; each call embeds and writes the shards of its batch."""

    def __init__(self, settings: dict[str, Any], job: dict[str, Any], cache_dir: str) -> None:
        from embedserve.library import Embedder

        self._job = JobOptions(
            inputs=tuple(job["inputs"]),
            output=Path(job["output"]),
            fields=Fields(job["text"], job["id"], tuple(job["keep"])),
            **{key: job[key] for key in ("input_type", "prompt_name", "dimensions")},
            output_dtype=job["output_dtype"],
        )
        model = ModelSettings.model_validate(settings)
        self._embedder = Embedder(model, cache_dir=Path(cache_dir))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        import ray

        node = ray.get_runtime_context().get_node_id()
        done: dict[str, list[Any]] = {"shard": [], "texts": [], "tokens": [], "empty": []}
        for encoded in batch["plan"]:
            plan = _decode(str(encoded))
            records = read_shard(plan, self._job.fields)
            kept = [record for record in records if record.text]
            work = embed_shard(self._embedder.engine, kept, self._job, None)
            vectors, tokens = self._embedder.run(work)
            columns = {key: [r.kept[key] for r in kept] for key in self._job.fields.keep}
            write_shard(self._job.output, plan.index, [r.id for r in kept], vectors, columns)
            done["shard"].append(plan.index)
            done["texts"].append(len(kept))
            done["tokens"].append(tokens)
            done["empty"].append(len(records) - len(kept))
        done["node"] = [node] * len(done["shard"])
        return done


def run_ray_job(
    settings: ModelSettings, options: JobOptions, cache_dir: Path, cluster: RayOptions
) -> JobSummary:
    """Plan, skip the finished shards, run the rest on the actor pool, to the end."""
    inputs = [str(Path(name).resolve()) for name in expand_inputs(options.inputs)]
    output = options.output.resolve()
    runner = ModelRunner.from_settings(settings, cache_dir)
    identity = job_identity(runner, settings, options, inputs)
    check_or_write_manifest(output, identity)
    with hold_output(output):
        return _run_held(
            options, inputs, output, identity=identity, model=(settings, cache_dir), cluster=cluster
        )


def _run_held(
    options: JobOptions,
    inputs: list[str],
    output: Path,
    *,
    identity: dict[str, Any],
    model: tuple[ModelSettings, Path],
    cluster: RayOptions,
) -> JobSummary:
    """The job, with the output held: clean, plan, run the missing shards on the pool."""
    import ray
    import ray.data

    settings, cache_dir = model
    remove_partials(output)
    plans = plan_shards(inputs, options.shard_size)
    done = finished_shards(output)
    missing = [plan for plan in plans if plan.index not in done]
    summary = JobSummary(shards_skipped=len(plans) - len(missing))
    progress = Progress(sum(plan.count for plan in plans), quiet=options.quiet)
    progress.skipped(sum(plan.count for plan in plans if plan.index in done))
    ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.wait_for_min_actors_s = cluster.actor_start_timeout_s or -1
    nodes: set[str] = set()
    try:
        if missing:
            job = _job_dict(options, inputs, output)
            rows = ray.data.from_items([{"plan": _encode(plan)} for plan in missing])
            results = rows.map_batches(
                ShardWorker,
                fn_constructor_kwargs={
                    "settings": settings.model_dump(mode="json"),
                    "job": job,
                    "cache_dir": str(cache_dir.resolve()),
                },
                batch_size=1,
                batch_format="numpy",
                # one shard at a time per actor: a shard is a long task that reads its own input,
                # so queueing more on the first actor ready would only unbalance the pool
                compute=ray.data.ActorPoolStrategy(
                    size=cluster.num_actors, max_tasks_in_flight_per_actor=1
                ),
                num_cpus=cluster.cpus_per_actor,
                num_gpus=cluster.gpus_per_actor or None,
                runtime_env={"env_vars": thread_limits_env(cluster.cpus_per_actor)},
            )
            try:
                for row in results.iter_rows():
                    progress.advance(int(row["texts"]) + int(row["empty"]), int(row["tokens"]))
                    summary.shards_written += 1
                    summary.texts += int(row["texts"])
                    summary.tokens += int(row["tokens"])
                    summary.empty_skipped += int(row["empty"])
                    nodes.add(str(row["node"]))
            except ray.exceptions.GetTimeoutError as error:
                raise JobError(
                    f"the {cluster.num_actors} actor(s) did not all start within "
                    f"{cluster.actor_start_timeout_s} s (--actor-start-timeout): the cluster may "
                    f"lack the CPUs/GPUs asked for ({error})"
                ) from None
    finally:
        progress.close()
        ray.shutdown()
    summary.seconds = progress.elapsed_s
    summary.nodes = len(nodes)
    remove_partials(output)  # what an actor killed mid-shard was writing (Ray retried the shard)
    save_manifest(output, identity, {"complete": True, **asdict(summary)})
    return summary


def _job_dict(options: JobOptions, inputs: list[str], output: Path) -> dict[str, Any]:
    fields = options.fields
    return {
        "inputs": inputs,
        "output": str(output),
        "text": fields.text,
        "id": fields.id,
        "keep": list(fields.keep),
        "input_type": options.input_type,
        "prompt_name": options.prompt_name,
        "dimensions": options.dimensions,
        "output_dtype": options.output_dtype,
    }


def _encode(plan: ShardPlan) -> str:
    return json.dumps(asdict(plan))


def _decode(encoded: str) -> ShardPlan:
    raw = json.loads(encoded)
    pieces = tuple(Piece(**piece) for piece in raw["pieces"])
    return ShardPlan(raw["index"], raw["position"], pieces)
