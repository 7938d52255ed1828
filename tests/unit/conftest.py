"""Unit tests start without EMBEDSERVE_* variables (the settings read the environment)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read os.environ when `serve` runs: start every test without EMBEDSERVE_*."""
    for name in list(os.environ):
        if name.startswith("EMBEDSERVE_"):
            monkeypatch.delenv(name)
