"""The models file of `--config` (JSON or YAML): which models to serve, each with its settings."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from embedserve.config import BatchingLimits, ModelSettings, check_limits

_LIMIT_KEYS = {f.name for f in fields(BatchingLimits)}
_MODEL_KEYS = {
    "backend",
    "device",
    "matryoshka",
    "pooling",
    "normalize",
    "max_length",
    "trust_remote_code",
    "precision",
}
_KEYS = {"id", "aliases", "path", "matryoshka_dimensions"} | _MODEL_KEYS | _LIMIT_KEYS


def _parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def _entry(raw: Any, index: int, defaults: ModelSettings, base: Path) -> ModelSettings:
    where = f"models[{index}]"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object with at least `id` or `path`")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known keys: {sorted(_KEYS)}")
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ValueError(f"{where}.aliases must be a list of strings")
    path = Path(raw["path"]).expanduser() if raw.get("path") else None
    if path is not None and not path.is_absolute():
        path = base / path  # relative to the config file
    name = raw.get("id") or (path.name if path else None)
    names = (str(name), *aliases) if name else ()
    dims = raw.get("matryoshka_dimensions") or []
    if not isinstance(dims, list) or not all(isinstance(d, int) and d > 0 for d in dims):
        raise ValueError(f"{where}.matryoshka_dimensions must be a list of positive integers")
    limits = replace(defaults.limits, **{k: raw[k] for k in _LIMIT_KEYS & set(raw)})
    check_limits(limits)
    return replace(
        defaults,
        path=path,
        served_names=names,
        limits=limits,
        matryoshka_dimensions=tuple(dims) or defaults.matryoshka_dimensions,
        **{k: raw[k] for k in _MODEL_KEYS & set(raw)},
    )


def load_models_file(path: Path, defaults: ModelSettings) -> tuple[ModelSettings, ...]:
    """Read `{"models": [...]}`; each entry's missing settings come from `defaults`."""
    try:
        data = _parse(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the config file {path}: {exc}") from exc
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected an object with a non-empty `models` list")
    return tuple(_entry(raw, i, defaults, path.parent) for i, raw in enumerate(entries))
