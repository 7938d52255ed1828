"""`build`: settings from command-line values over given variables, for the settings tests."""

from __future__ import annotations

from typing import Any

from embedserve.settings import ServerSettings, settings_from_sources


def build(environ: dict[str, str] | None = None, **given: Any) -> ServerSettings:
    """Settings from command-line values `given` over the variables `environ` (default none)."""
    return settings_from_sources(given, environ or {})
