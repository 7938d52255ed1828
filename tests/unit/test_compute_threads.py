"""Forward-pass threads: `OMP_NUM_THREADS` when set to a positive integer (as Ray sets it for an
actor's CPUs), else every core."""

from __future__ import annotations

import os

import pytest

from embedserve.backends.base import compute_threads


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
