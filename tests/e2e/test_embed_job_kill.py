"""`embedserve embed` on the real model, killed with SIGKILL at random points (while loading,
between shards, in the middle of one) and re-run each time: the finished output has every id
exactly once and the same vectors as an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from embedserve.jobs.output import finished_shards
from tests.e2e.shared import LONG_TESTS

pytestmark = pytest.mark.slow
SCALE = 2 if LONG_TESTS else 1  # 16 shards either way, of 50 or 100 records
RECORDS = 800 * SCALE
SHARD = 50 * SCALE


def write_corpus(path: Path) -> Path:
    rng = random.Random(11)
    words = ["whale", "ocean", "bread", "train", "bridge", "river", "stone", "light", "music"]
    lines = [" ".join(rng.choices(words, k=rng.randint(1, 40))) for _ in range(RECORDS)]
    path.write_text("\n".join(lines) + "\n")
    return path


def command(corpus: Path, output: Path, cache: Path) -> list[str]:
    job = ["embed", str(corpus), "-o", str(output), "--shard-size", str(SHARD), "--quiet"]
    return [sys.executable, "-m", "embedserve", *job, "--cache-dir", str(cache)]


def read(output: Path) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(sorted(output.glob("part-*.parquet")))
    return table.column("id").to_pylist(), np.array(table.column("embedding").to_pylist())


def kill_when(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], delay_s: float = 0.0
) -> bool:
    """SIGKILL `process` `delay_s` after `ready()` holds; False if it finished first."""
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        if ready():
            time.sleep(delay_s)
            if process.poll() is not None:
                return False
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.01)
    process.wait(timeout=5)
    return False


def kill_point(output: Path, target: int, rng: random.Random) -> tuple[Callable[[], bool], float]:
    """When to kill: 0, a random moment while the model loads; N > 0, once N shards are done;
    -1, a random moment after the next shard is renamed into place (inside the one after it,
    or while it is written)."""
    started, before = time.monotonic(), len(finished_shards(output))
    if target == 0:
        wait = rng.uniform(0.2, 2.0)
        return (lambda: time.monotonic() - started > wait), 0.0
    if target > 0:
        return (lambda: len(finished_shards(output)) >= target), 0.0
    return (lambda: len(finished_shards(output)) > before), rng.uniform(0.0, 0.4)


def test_kill_9_at_random_points_then_resume(tmp_path: Path, onnx_cache_dir: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.txt")
    reference = tmp_path / "reference"
    subprocess.run(command(corpus, reference, onnx_cache_dir), check=True, timeout=600)
    expected_ids, expected = read(reference)
    assert expected_ids == [str(i) for i in range(RECORDS)]

    output = tmp_path / "interrupted"
    rng = random.Random(5)
    killed = 0
    # while the model loads, at 3 random shard counts, then 3 times inside a shard
    for target in (0, *sorted(rng.sample(range(1, 12), 3)), -1, -1, -1):
        process = subprocess.Popen(command(corpus, output, onnx_cache_dir))
        killed += kill_when(process, *kill_point(output, target, rng))
    assert killed >= 6  # the run was really cut short that often
    final = subprocess.run(command(corpus, output, onnx_cache_dir), check=False, timeout=600)
    assert final.returncode == 0
    ids, vectors = read(output)
    assert ids == expected_ids  # every id exactly once, in order
    assert np.array_equal(vectors, expected)
    assert not list(output.glob("*.partial"))
