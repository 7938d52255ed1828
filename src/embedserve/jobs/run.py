"""`embedserve embed`: a corpus embedded in-process, shard by shard, resumable.

The records are cut into shards of `shard_size` in input order, so the same inputs give the same
shards. A shard already in the output is skipped; any other is embedded (its texts sorted by
length, several engine requests in flight so tokenizing overlaps the forward passes) and written
whole while the next one is embedded. A killed run leaves whole shards only; a re-run with the
same arguments does the rest, and equal shards give equal vectors (deterministic batching).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedserve.engine import Engine
from embedserve.errors import EmbedServeError
from embedserve.jobs.output import (
    check_or_write_manifest,
    finished_shards,
    hold_output,
    remove_partials,
    save_manifest,
    write_shard,
)
from embedserve.jobs.progress import Progress
from embedserve.jobs.readers import Fields, Record, count_records, expand_inputs, read_records
from embedserve.runner import ModelRunner
from embedserve.settings import ModelSettings

TEXTS_PER_REQUEST = 256
REQUESTS_IN_FLIGHT = 4


class JobError(RuntimeError):
    """The job cannot go on; the message names the record and what to change."""


@dataclass(frozen=True)
class JobOptions:
    """What to embed, how, and where to write it."""

    inputs: tuple[str, ...]
    output: Path
    fields: Fields = field(default_factory=Fields)
    shard_size: int = 10_000
    input_type: str | None = None
    prompt_name: str | None = None
    dimensions: int | None = None
    normalize: bool | None = None
    output_dtype: str | None = None
    quiet: bool = False


@dataclass
class JobSummary:
    """What one run did."""

    shards_written: int = 0
    shards_skipped: int = 0
    texts: int = 0
    tokens: int = 0
    empty_skipped: int = 0
    seconds: float = 0.0
    nodes: int = 1  # machines whose workers embedded shards (a Ray job may use several)

    def line(self, output: Path) -> str:
        """The summary printed at the end."""
        rate = self.texts / self.seconds if self.seconds else 0.0
        token_rate = self.tokens / self.seconds if self.seconds else 0.0
        return (
            f"embedded {self.texts} texts ({self.tokens} tokens) in {self.seconds:.1f}s: "
            f"{rate:.0f} texts/s, {token_rate:.0f} tokens/s; shards: {self.shards_written} "
            f"written, {self.shards_skipped} already done; empty texts skipped: "
            f"{self.empty_skipped}; nodes: {self.nodes}; output: {output}"
        )


def run_job(settings: ModelSettings, options: JobOptions, cache_dir: Path) -> JobSummary:
    """Run (or resume) the job to the end."""
    if options.shard_size < 1:
        raise JobError("--shard-size must be at least 1")
    inputs = expand_inputs(options.inputs)
    runner = ModelRunner.from_settings(settings, cache_dir)
    identity = job_identity(runner, settings, options, inputs)
    check_or_write_manifest(options.output, identity)
    with hold_output(options.output):
        remove_partials(options.output)
        total = count_records(inputs)
        progress = Progress(total, quiet=options.quiet)
        try:
            summary = asyncio.run(_run(runner, options, inputs, progress))
        finally:
            progress.close()
        save_manifest(options.output, identity, {"complete": True, **asdict(summary)})
    return summary


def job_identity(
    runner: ModelRunner, settings: ModelSettings, options: JobOptions, inputs: list[str]
) -> dict[str, Any]:
    """Everything the vectors and the shards depend on (compared on every re-run)."""
    from embedserve.backends.onnx_export import model_content_hash

    spec = runner.spec
    return {
        "model": runner.id,
        "model_files": model_content_hash(spec.path),
        "backend": runner.backend_name,
        "device": settings.device,
        "precision": settings.precision,
        "pooling": spec.pooling.value,
        "max_length": spec.max_length,
        "truncate": runner.truncate,
        "input_type": options.input_type,
        "prompt_name": options.prompt_name,
        "dimensions": options.dimensions,
        "normalize": options.normalize,
        "output_dtype": options.output_dtype or "float",
        "text_field": options.fields.text,
        "id_field": options.fields.id,
        "keep_fields": list(options.fields.keep),
        "shard_size": options.shard_size,
        "inputs": [[_absolute(name), _size(name)] for name in inputs],
    }


def _absolute(name: str) -> str:
    return name if name == "-" else str(Path(name).resolve())


def _size(name: str) -> int | None:
    return None if name == "-" else Path(name).stat().st_size


def shards(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    """Consecutive runs of `size` records (the last may be shorter)."""
    while batch := list(itertools.islice(records, size)):
        yield batch


async def _run(
    runner: ModelRunner, options: JobOptions, inputs: list[str], progress: Progress
) -> JobSummary:
    summary = JobSummary()
    done = finished_shards(options.output)
    pending = shards(read_records(inputs, options.fields), options.shard_size)
    writing: asyncio.Task[None] | None = None
    async with Engine([runner]) as engine:
        started = time.perf_counter()  # the model's load is not the job's speed
        progress.start_clock()
        for index in itertools.count():
            batch = await asyncio.to_thread(next, pending, None)  # reading overlaps compute
            if batch is None:
                break
            if index in done:
                summary.shards_skipped += 1
                progress.skipped(len(batch))
                continue
            kept = [record for record in batch if record.text]
            summary.empty_skipped += len(batch) - len(kept)
            vectors, tokens = await embed_shard(engine, kept, options, progress)
            if writing is not None:
                await writing
            columns = {key: [r.kept[key] for r in kept] for key in options.fields.keep}
            ids = [record.id for record in kept]
            writing = asyncio.create_task(
                asyncio.to_thread(_write, options.output, index, ids, vectors, columns)
            )
            summary.shards_written += 1
            summary.texts += len(kept)
            summary.tokens += tokens
        if writing is not None:
            await writing
    summary.seconds = time.perf_counter() - started
    return summary


def _write(output: Path, index: int, ids: list[str], vectors: Any, columns: Any) -> None:
    write_shard(output, index, ids, vectors, columns)


async def embed_shard(
    engine: Engine, records: list[Record], options: JobOptions, progress: Progress | None
) -> tuple[np.ndarray, int]:
    """The shard's vectors in record order, and its token count: texts sorted by length into
    requests of similar lengths, a few in flight."""
    order = sorted(range(len(records)), key=lambda i: len(records[i].text), reverse=True)
    runner = engine.runners[0]
    fit = runner.limits.max_request_tokens // runner.spec.max_length  # never over the limit
    step = max(1, min(TEXTS_PER_REQUEST, runner.limits.max_client_batch_size, fit))
    parts = [order[start : start + step] for start in range(0, len(order), step)]
    in_flight = asyncio.Semaphore(REQUESTS_IN_FLIGHT)

    async def one(part: list[int]) -> tuple[np.ndarray, int]:
        async with in_flight:
            try:
                result = await engine.embed(
                    [records[i].text for i in part],
                    input_type=options.input_type,
                    prompt_name=options.prompt_name,
                    dimensions=options.dimensions,
                    normalize=options.normalize,
                    output_dtype=options.output_dtype,
                )
            except EmbedServeError as error:
                ids = ", ".join(records[i].id for i in part[:3])
                raise JobError(f"records {ids}, ...: {error.message}") from None
            if progress is not None:
                progress.advance(len(part), result.prompt_tokens)
            return np.asarray(result.vectors), result.prompt_tokens

    results = await asyncio.gather(*(one(part) for part in parts))
    if not results:
        return np.empty((0, 0), dtype=np.float32), 0
    vectors = np.empty((len(records), results[0][0].shape[1]), dtype=results[0][0].dtype)
    for part, (found, _) in zip(parts, results, strict=True):
        vectors[part] = found
    return vectors, sum(tokens for _, tokens in results)
