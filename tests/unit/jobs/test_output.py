"""The job's output: a shard appears only whole (staged, renamed), its schema, partial files of
a killed run are ignored and removed, the manifest refuses a run with other arguments, and one
job at a time writes a folder (a killed job's lock does not outlive it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedserve.jobs.output import (
    OutputBusy,
    OutputMismatch,
    check_or_write_manifest,
    finished_shards,
    hold_output,
    remove_partials,
    shard_path,
    write_shard,
)


def test_shard_schema_and_atomic_write(tmp_path: Path) -> None:
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_shard(tmp_path, 7, ["a", "b"], vectors, {"lang": ["en", "fr"]})
    table = pq.read_table(shard_path(tmp_path, 7))
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 3)
    assert table.column("id").to_pylist() == ["a", "b"]
    assert np.array_equal(np.array(table.column("embedding").to_pylist()), vectors)
    assert table.column("lang").to_pylist() == ["en", "fr"]
    packed = np.array([[1, -2]], dtype=np.int8)
    write_shard(tmp_path, 8, ["c"], packed, {})
    assert pq.read_schema(shard_path(tmp_path, 8)).field("embedding").type == pa.list_(pa.int8(), 2)
    (tmp_path / ".part-00009.parquet.123.partial").write_bytes(b"half a shard")
    assert finished_shards(tmp_path) == {7, 8}
    remove_partials(tmp_path)
    assert not list(tmp_path.glob("*.partial"))


def test_manifest_refuses_other_arguments_and_foreign_directories(tmp_path: Path) -> None:
    output = tmp_path / "out"
    identity = {"model": "m", "shard_size": 10, "inputs": [["a.txt", 5]]}
    check_or_write_manifest(output, identity)
    check_or_write_manifest(output, identity)  # the same arguments: resume
    with pytest.raises(OutputMismatch, match=r"shard_size: 10 there, 20 now.*same arguments"):
        check_or_write_manifest(output, {**identity, "shard_size": 20})
    with pytest.raises(OutputMismatch, match=r"inputs: \[\['a.txt', 5\]\] there"):
        check_or_write_manifest(output, {**identity, "inputs": [["a.txt", 6]]})
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"")
    with pytest.raises(OutputMismatch, match=r"not empty and holds no _manifest\.json"):
        check_or_write_manifest(foreign, identity)


def test_one_job_at_a_time_holds_the_output(tmp_path: Path) -> None:
    with (
        hold_output(tmp_path),
        pytest.raises(OutputBusy, match="another `embedserve embed` job"),
        hold_output(tmp_path),
    ):
        pass
    with hold_output(tmp_path):  # released: the next job goes on
        pass


HOLD_AND_WAIT = (
    "import sys, time; from pathlib import Path; from embedserve.jobs.output import hold_output\n"
    "with hold_output(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)"
)


def test_a_killed_jobs_lock_goes_with_it(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputBusy), hold_output(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with hold_output(tmp_path):  # kill -9 released it
        pass
