"""`embedserve embed --ray` on a real two-node Ray cluster (two one-CPU nodes, started and
stopped by the tests): the output equals the local job's (same ids, same vectors), both nodes
ran actors, and after the driver is killed mid-job a re-run computes only the missing shards."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from embedserve.jobs.output import finished_shards
from embedserve.testing_ray import UNAUTHENTICATED, RayCluster, processes_titled

pytestmark = pytest.mark.slow
RECORDS, SHARD = 800, 50


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    rows = [
        f'{{"id": "doc-{i}", "text": "text {i} about {"whales " * (i % 30)}"}}'
        for i in range(RECORDS)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def embed(corpus: Path, output: Path, cache: Path, *extra: str) -> list[str]:
    job = ["embed", str(corpus), "-o", str(output), "--id-field", "id", "--shard-size", str(SHARD)]
    return [sys.executable, "-m", "embedserve", *job, "--quiet", "--cache-dir", str(cache), *extra]


def read(output: Path) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(sorted(output.glob("part-*.parquet")))
    return table.column("id").to_pylist(), np.array(table.column("embedding").to_pylist())


@pytest.fixture(scope="module")
def local_output(
    corpus: Path, tmp_path_factory: pytest.TempPathFactory, onnx_cache_dir: Path
) -> tuple[list[str], np.ndarray]:
    output = tmp_path_factory.mktemp("local") / "out"
    subprocess.run(embed(corpus, output, onnx_cache_dir), check=True, timeout=600)
    return read(output)


def test_ray_job_equals_the_local_job_on_both_nodes(
    ray_cluster: RayCluster,
    corpus: Path,
    tmp_path: Path,
    onnx_cache_dir: Path,
    local_output: tuple[list[str], np.ndarray],
) -> None:
    ray = ["--ray", ray_cluster.address, "--num-actors", "2"]
    done = subprocess.run(
        embed(corpus, tmp_path / "out", onnx_cache_dir, *ray),
        capture_output=True, text=True, timeout=600, check=False, env=UNAUTHENTICATED,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"shards: {RECORDS // SHARD} written" in done.stdout and "nodes: 2" in done.stdout
    ids, vectors = read(tmp_path / "out")
    assert ids == local_output[0]
    np.testing.assert_allclose(vectors, local_output[1], atol=1e-6)
    for index in (2, 5):  # the local job resumes the Ray job's output (same manifest)
        (tmp_path / "out" / f"part-{index:05d}.parquet").unlink()
    local = subprocess.run(
        embed(corpus, tmp_path / "out", onnx_cache_dir),
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    assert f"shards: 2 written, {RECORDS // SHARD - 2} already done" in local.stdout
    assert read(tmp_path / "out")[0] == local_output[0]


def start_until_shards(command: list[str], output: Path, shards: int) -> subprocess.Popen[str]:
    """Start the job and return once `shards` shards are written, the job still running."""
    job = subprocess.Popen(
        command, env=UNAUTHENTICATED, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 600
    while len(finished_shards(output)) < shards and job.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job.poll() is None, "the job ended before it could be interrupted"
    return job


def test_a_killed_driver_resumes_with_the_missing_shards_only(
    ray_cluster: RayCluster,
    corpus: Path,
    tmp_path: Path,
    onnx_cache_dir: Path,
    local_output: tuple[list[str], np.ndarray],
) -> None:
    output = tmp_path / "out"
    command = embed(
        corpus, output, onnx_cache_dir, "--ray", ray_cluster.address, "--num-actors", "2"
    )
    driver = start_until_shards(command, output, 3)
    os.kill(driver.pid, signal.SIGKILL)
    driver.communicate()  # reaped, pipes closed
    time.sleep(2)  # the cluster ends the dead driver's actors
    before = len(finished_shards(output))
    rerun = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, env=UNAUTHENTICATED
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    written, skipped = map(
        int, re.search(r"shards: (\d+) written, (\d+) already", rerun.stdout).groups()
    )
    assert skipped >= before >= 3 and written + skipped == RECORDS // SHARD
    ids, vectors = read(output)
    assert ids == local_output[0]
    np.testing.assert_allclose(vectors, local_output[1], atol=1e-6)


def test_a_killed_actor_is_restarted_and_the_job_completes_exactly(
    ray_cluster: RayCluster,
    corpus: Path,
    tmp_path: Path,
    onnx_cache_dir: Path,
    local_output: tuple[list[str], np.ndarray],
) -> None:
    output = tmp_path / "out"
    command = embed(
        corpus, output, onnx_cache_dir, "--ray", ray_cluster.address, "--num-actors", "2"
    )
    job = start_until_shards(command, output, 2)
    workers = processes_titled(b"MapWorker")  # Ray Data's map actors
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)  # mid-shard: the actor embeds shard after shard
    stdout, stderr = job.communicate(timeout=600)
    assert job.returncode == 0, stderr[-3000:]
    assert f"shards: {RECORDS // SHARD} written" in stdout
    ids, vectors = read(output)
    assert ids == local_output[0]
    np.testing.assert_allclose(vectors, local_output[1], atol=1e-6)
    assert not list(output.glob(".*.partial"))  # the dead actor's staged file is cleaned up


def test_a_pool_the_cluster_cannot_hold_is_a_clear_error(
    ray_cluster: RayCluster, corpus: Path, tmp_path: Path, onnx_cache_dir: Path
) -> None:
    """Three one-CPU actors on two one-CPU nodes: the job says so after the start timeout,
    rather than running on two actors or waiting for ever."""
    ray = ["--ray", ray_cluster.address, "--num-actors", "3", "--actor-start-timeout", "10"]
    started = time.monotonic()
    done = subprocess.run(
        embed(corpus, tmp_path / "out", onnx_cache_dir, *ray),
        capture_output=True, text=True, timeout=300, check=False, env=UNAUTHENTICATED,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    assert "did not all start within 10 s (--actor-start-timeout)" in done.stderr
    assert time.monotonic() - started < 200
    assert not finished_shards(tmp_path / "out")
