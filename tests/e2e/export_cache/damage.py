"""Ways to damage an export cache, and the inputs the cache tests feed the tiny model."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

IDS = np.array([[101, 7592, 2088, 102, 0], [101, 2023, 2003, 1037, 102]], dtype=np.int64)


MASK = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=np.int64)


def set_aside_folders(folder: Path) -> list[Path]:
    return sorted(folder.parent.glob(f"{folder.name}.corrupt-*"))


def garbage(path: Path) -> None:
    path.write_bytes(b"this is not a model" * 100)


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _raise(code: int) -> Callable[..., None]:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    return fail


def _chmod_stops_root(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir(mode=0o555)
    try:
        (probe / "x").mkdir()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o755)
    return False
