"""Forward-pass threads: `OMP_NUM_THREADS` when set to a positive integer (as Ray sets it for an
actor's CPUs), else every core."""

from __future__ import annotations

import os

import pytest

from embedserve.backends.base import compute_threads, thread_limits_env


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), ("3", 3), (None, os.cpu_count()), ("", os.cpu_count()), ("0", os.cpu_count())],
)
def test_compute_threads(monkeypatch: pytest.MonkeyPatch, value: str | None, expected: int) -> None:
    if value is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert compute_threads() == expected


@pytest.mark.parametrize(("cpus", "threads"), [(0.5, "1"), (1.0, "1"), (4.0, "4"), (2.5, "2")])
def test_thread_limits_env_holds_both_pools(cpus: float, threads: str) -> None:
    assert thread_limits_env(cpus) == {"OMP_NUM_THREADS": threads, "RAYON_NUM_THREADS": threads}
