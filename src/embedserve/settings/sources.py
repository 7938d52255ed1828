"""`ServerSettings` from the command line over `EMBEDSERVE_*` variables over the declared
defaults. The environment is read here only, when `serve` runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from embedserve.settings.api_keys import collect_api_keys
from embedserve.settings.declare import Option, options
from embedserve.settings.errors import settings_error
from embedserve.settings.model import BatchingLimits, ModelSettings
from embedserve.settings.models_file import load_models_file
from embedserve.settings.server import ServeInputs, ServerSettings

Settings = TypeVar("Settings", bound=BaseModel)
SERVE_MODELS = (ServerSettings, ServeInputs, ModelSettings, BatchingLimits)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def serve_options() -> tuple[Option, ...]:
    """Every flag of `embedserve serve`, in the order --help and the docs list them."""
    return tuple(option for option in options(*SERVE_MODELS) if option.setting.cli)


def environment_value(option: Option, environ: Mapping[str, str]) -> tuple[Any, str] | None:
    """The option's value from its variable (or an older name) and that variable's name."""
    for name in option.env_vars:
        raw = environ.get(name)
        if raw is None:
            continue
        if option.is_switch and option.default is None and not raw.strip():
            continue  # an empty variable leaves a three-state switch to the model's word
        if option.is_switch:
            value = raw.strip().lower()
            if value not in _TRUE | _FALSE:
                raise ValueError(f"{name}={raw!r}: expected true or false")
            return value in _TRUE, name
        if option.repeatable:
            parts = [part.strip() for part in raw.split(",")]
            return (parts if option.setting.secret else [p for p in parts if p]), name
        return raw, name
    return None


def settings_from_sources(
    given: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> ServerSettings:
    """Build and check the settings: `given` maps field names to command-line values (absent
    or None: not given); `environ` defaults to the process environment."""
    environ = os.environ if environ is None else environ
    known = {option.name for option in serve_options()}
    unknown = sorted(set(given) - known - {"command"})
    if unknown:
        raise TypeError(f"not serve settings: {unknown}")
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for option in serve_options():
        if given.get(option.name) is not None:
            values[option.name], origins[option.name] = given[option.name], option.flag
        elif (found := environment_value(option, environ)) is not None:
            values[option.name], origins[option.name] = found
    flags = {option.name: option.flag for option in serve_options()}

    def where(field: str) -> str:
        return origins.get(field) or flags.get(field) or field

    def build(model: type[Settings], **extra: Any) -> Settings:
        fields = {name: values[name] for name in model.model_fields if name in values}
        try:
            return model.model_validate({**fields, **extra})
        except ValidationError as exc:
            raise settings_error(exc, where) from None

    inputs = build(ServeInputs)
    defaults = build(ModelSettings, limits=build(BatchingLimits))
    api_keys = collect_api_keys(values.get("api_keys") or (), inputs.api_key_file)
    return build(ServerSettings, api_keys=api_keys, models=models_to_serve(inputs, defaults))


def updated(settings: Settings, **changes: Any) -> Settings:
    """A copy of frozen settings with `changes`, validated again."""
    return type(settings).model_validate({**settings.model_dump(), **changes})


def models_to_serve(inputs: ServeInputs, defaults: ModelSettings) -> tuple[ModelSettings, ...]:
    """The bundled model, one per `--model` (the bundled model's id or alias, when no such
    directory exists, names the bundled model: `--model all-MiniLM-L6-v2 --model /a/reranker`
    serves both), or the entries of the models file."""
    paths: list[Path | None] = [_directory_or_bundled(p) for p in inputs.model]
    names = inputs.served_model_name
    if inputs.models_file:
        if paths or names:
            raise ValueError(
                "give models either in --models-file (--config) or with --model, not both"
            )
        return load_models_file(Path(inputs.models_file).expanduser(), defaults)
    if len(paths) > 1 and names:
        raise ValueError(
            "--served-model-name names one model; to name several, use --models-file "
            "(each --model is otherwise served under its directory's name)"
        )
    if not paths:
        return (updated(defaults, served_names=names),)
    return tuple(updated(defaults, path=path, served_names=names) for path in paths)


def _directory_or_bundled(value: str) -> Path | None:
    """`value` as a directory, or None (the bundled model) for its id or an alias of it."""
    from embedserve.models.bundled import BUNDLED_MODEL_ALIASES, BUNDLED_MODEL_ID

    path = Path(value).expanduser()
    if value in (BUNDLED_MODEL_ID, *BUNDLED_MODEL_ALIASES) and not path.exists():
        return None
    return path


ModelSource = str | Path | ModelSettings | None


def model_settings_for(source: ModelSource, overrides: dict[str, Any]) -> ModelSettings:
    """`ModelSettings` for a directory (or None: the bundled model) with `overrides`; limits
    fields may be given flat (`max_batch_tokens=...`). Settings objects are taken as they are."""
    if isinstance(source, ModelSettings):
        return source
    limit_fields = ModelSettings.model_fields["limits"].annotation.model_fields  # type: ignore[union-attr]
    limits = {key: value for key, value in overrides.items() if key in limit_fields}
    rest = {key: value for key, value in overrides.items() if key not in limit_fields}
    path = Path(source).expanduser() if source is not None else None
    return ModelSettings.model_validate({**rest, "path": path, "limits": limits})
