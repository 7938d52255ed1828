"""One translation of pydantic validation errors into messages that name where a value came
from (a flag, an environment variable, a models-file key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError


def settings_error(exc: ValidationError, where: Callable[[str], str]) -> ValueError:
    """A `ValueError` for the first error; `where(field)` names the field's source."""
    first = exc.errors()[0]
    location = [str(part) for part in first["loc"] if not isinstance(part, int)]
    field = location[-1] if location else ""
    message = str(first["msg"])
    if first["type"] == "extra_forbidden":
        return ValueError(f"{where(field)}: unknown setting")
    if first["type"] == "value_error":  # a validator's own message says it all
        return ValueError(message.removeprefix("Value error, "))
    shown = _shown(first.get("input"))
    return ValueError(f"{where(field)}{shown}: {message[:1].lower()}{message[1:]}")


def _shown(value: Any) -> str:
    if isinstance(value, dict | list) or value is None:
        return ""
    return f"={value!r}"
