"""API keys from `--api-key` / `EMBEDSERVE_API_KEY` and `--api-key-file`: fail closed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def read_key_file(path: str) -> list[str]:
    """The keys of an API key file: one per line; blank lines and # comments are skipped."""
    file = Path(path).expanduser()
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--api-key-file {file}: cannot read it ({exc})") from exc
    keys = [line.strip() for line in lines]
    keys = [key for key in keys if key and not key.startswith("#")]
    if not keys:
        raise ValueError(
            f"--api-key-file {file} has no keys (only blank or # comment lines); refusing to "
            "start without the authentication it asks for"
        )
    return keys


def collect_api_keys(given: Sequence[str], key_file: str | None) -> tuple[str, ...]:
    """Keys given directly and from the key file; any empty or malformed key stops the start,
    so a missing variable never turns authentication off."""
    keys = [str(key) for key in given]
    for position, key in enumerate(keys):
        if not key.strip():
            raise ValueError(
                f"--api-key / EMBEDSERVE_API_KEY value {position + 1} is empty (is the variable "
                "that should hold it unset?); refusing to start with authentication off"
            )
    if key_file is not None and not str(key_file).strip():
        raise ValueError(
            "--api-key-file / EMBEDSERVE_API_KEY_FILE is set but empty (is the variable that "
            "should hold it unset?); refusing to start with authentication off"
        )
    if key_file:
        keys += read_key_file(key_file)
    for position, key in enumerate(keys):
        if not key.isprintable() or any(char.isspace() for char in key):
            raise ValueError(
                f"API key {position + 1} contains spaces or control characters; a key must be "
                "one printable word"
            )
    return tuple(dict.fromkeys(keys))
