"""The job's output directory: numbered Parquet shards, each written beside its place and renamed
into it (a shard file exists only whole), and `_manifest.json`, which names what the vectors
depend on so that a re-run with other arguments is refused instead of mixing vectors."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "_manifest.json"  # "_": Parquet readers (pyarrow, pandas, Spark) skip it in the folder
SHARD_PATTERN = "part-{:05d}.parquet"
MANIFEST_VERSION = 1
LOCK = "_lock"  # held by the job writing the folder; the kernel drops it when that job dies


class OutputMismatch(ValueError):
    """The output directory holds a job run with other arguments (or inputs)."""


class OutputBusy(ValueError):
    """Another job is writing the output directory now."""


@contextlib.contextmanager
def hold_output(output: Path) -> Iterator[None]:
    """Be the only job writing `output` while the block runs: a second job on the same folder
    is refused at once instead of mixing its shards in or deleting the first one's staged
    files. A killed job's lock goes with its process, so the re-run is never blocked."""
    with open(output / LOCK, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusy(
                f"{output} is being written by another `embedserve embed` job; wait for it to "
                "finish, or choose another --output"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shard_path(output: Path, index: int) -> Path:
    """Where shard `index` lives once finished."""
    return output / SHARD_PATTERN.format(index)


def finished_shards(output: Path) -> set[int]:
    """The indexes of the shards already written whole."""
    done = set()
    for path in output.glob("part-*.parquet"):
        stem = path.name.removeprefix("part-").removesuffix(".parquet")
        if stem.isdigit():
            done.add(int(stem))
    return done


def write_shard(
    output: Path,
    index: int,
    ids: Sequence[str],
    vectors: np.ndarray,
    kept: Mapping[str, Sequence[Any]],
) -> Path:
    """Write shard `index` (`id`, `embedding` as a fixed-size list of the vectors' dtype, the
    kept columns) to a temporary file, flush it to disk, and rename it into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = pa.array(np.ascontiguousarray(vectors).reshape(-1))
    columns = {
        "id": pa.array(list(ids), type=pa.string()),
        "embedding": pa.FixedSizeListArray.from_arrays(flat, int(vectors.shape[1])),
        **{name: pa.array(list(values)) for name, values in kept.items()},
    }
    table = pa.table(columns)
    target = shard_path(output, index)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    with open(partial, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)
    return target


def remove_partials(output: Path) -> None:
    """Drop the leftovers of shards (and manifests) a killed run was writing."""
    for leftover in output.glob(".*.partial"):
        leftover.unlink(missing_ok=True)


def check_or_write_manifest(output: Path, identity: Mapping[str, Any]) -> None:
    """Create `output` with a manifest of `identity`, or check that the one there matches it
    (naming every difference)."""
    output.mkdir(parents=True, exist_ok=True)
    path = output / MANIFEST
    if path.is_file():
        existing = json.loads(path.read_text(encoding="utf-8")).get("identity", {})
        differences = [
            f"{key}: {existing.get(key)!r} there, {identity.get(key)!r} now"
            for key in sorted(set(existing) | set(identity))
            if existing.get(key) != identity.get(key)
        ]
        if differences:
            raise OutputMismatch(
                f"{output} holds a job run with other arguments or inputs ("
                + "; ".join(differences)
                + "); use a new --output directory, or the same arguments to resume"
            )
        return
    if any(output.iterdir()):
        raise OutputMismatch(
            f"{output} is not empty and holds no {MANIFEST}; use a new or empty --output directory"
        )
    save_manifest(output, identity, {})


def save_manifest(output: Path, identity: Mapping[str, Any], progress: Mapping[str, Any]) -> None:
    """Write the manifest atomically: what the vectors depend on, and the counts so far."""
    body = {"version": MANIFEST_VERSION, "identity": dict(identity), "progress": dict(progress)}
    path = output / MANIFEST
    staged = path.with_name(f".{MANIFEST}.{os.getpid()}.partial")
    staged.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(staged, path)
