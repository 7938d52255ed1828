"""Settings, each declared once (`declare.Setting` on a pydantic field): server settings,
per-model settings and their limits; the CLI, the environment, the models file and the docs
table are derived from those declarations."""

from embedserve.settings.model import (
    BACKENDS,
    DEVICES,
    PRECISIONS,
    BatchingLimits,
    ModelSettings,
)
from embedserve.settings.server import (
    ServeInputs,
    ServerSettings,
    default_cache_dir,
    resolve_cache_dir,
)
from embedserve.settings.sources import serve_options, settings_from_sources, updated

__all__ = [
    "BACKENDS",
    "DEVICES",
    "PRECISIONS",
    "BatchingLimits",
    "ModelSettings",
    "ServeInputs",
    "ServerSettings",
    "default_cache_dir",
    "resolve_cache_dir",
    "serve_options",
    "settings_from_sources",
    "updated",
]
