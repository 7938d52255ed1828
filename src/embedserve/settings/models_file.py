"""The models file of `--models-file` (JSON or YAML): which models to serve, each with its
settings, validated as strictly as flags: unknown keys and wrong types name the entry and key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from embedserve.settings.declare import declared
from embedserve.settings.errors import settings_error
from embedserve.settings.model import BatchingLimits, ModelSettings

MODEL_KEYS = tuple(option.name for option in declared(ModelSettings))
LIMIT_KEYS = tuple(option.name for option in declared(BatchingLimits))
FILE_KEYS = ("calibration_texts", "int8_ranges")
ENTRY_KEYS = ("id", "aliases", "path", *MODEL_KEYS, *LIMIT_KEYS)
_FLAGS = {o.name: o.flag for m in (ModelSettings, BatchingLimits) for o in declared(m)}


def _parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def _names(raw: dict[str, Any], path: Path | None, where: str) -> tuple[str, ...]:
    name = raw.get("id")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"{where}.id must be a string")
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ValueError(f"{where}.aliases must be a list of strings")
    name = name or (path.name if path else None)
    return (name, *aliases) if name else ()


def _path(raw: dict[str, Any], base: Path, where: str) -> Path | None:
    value = raw.get("path")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}.path must be a non-empty string")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path  # relative to the models file


def _entry(raw: Any, index: int, defaults: ModelSettings, base: Path) -> ModelSettings:
    where = f"models[{index}]"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object with at least `id` or `path`")
    unknown = sorted(set(raw) - set(ENTRY_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known keys: {sorted(ENTRY_KEYS)}")
    path = _path(raw, base, where)
    data = defaults.model_dump(mode="json")
    data.update({key: raw[key] for key in MODEL_KEYS if key in raw})
    data["limits"].update({key: raw[key] for key in LIMIT_KEYS if key in raw})
    data["path"] = str(path) if path else None
    for key in FILE_KEYS:  # like `path`, relative to the models file
        if isinstance(raw.get(key), str) and raw[key]:
            data[key] = str(base / Path(raw[key]).expanduser())
    data["served_names"] = _names(raw, path, where)

    def named(field: str) -> str:
        flag = f" ({_FLAGS[field]})" if field in _FLAGS else ""
        return f"{where}.{field}{flag}"

    try:  # strict: "4096" is not an int, "false" not a bool, as in JSON Schema
        return ModelSettings.model_validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as exc:
        raise settings_error(exc, named) from None


def load_models_file(path: Path, defaults: ModelSettings) -> tuple[ModelSettings, ...]:
    """Read `{"models": [...]}`; each entry's missing settings come from `defaults`."""
    try:
        data = _parse(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the models file {path}: {exc}") from exc
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected an object with a non-empty `models` list")
    return tuple(_entry(raw, i, defaults, path.parent) for i, raw in enumerate(entries))
