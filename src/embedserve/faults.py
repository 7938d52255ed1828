"""The grammar of injected faults (`--fake-faults`), shared by the settings and the fake backend."""

from __future__ import annotations

_FAULT_KEYS = {"delay": "delay_s", "fail_token": "fail_token_id", "kill_token": "kill_token_id"}


def parse_faults(spec: str) -> dict[str, float | int]:
    """`delay=0.1,fail_token=2023,kill_token=2024` -> FakeBackend keyword arguments."""
    options: dict[str, float | int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, _, value = part.partition("=")
        if key not in _FAULT_KEYS:
            raise ValueError(f"--fake-faults: unknown fault {key!r}; known: {sorted(_FAULT_KEYS)}")
        try:
            options[_FAULT_KEYS[key]] = float(value) if key == "delay" else int(value)
        except ValueError:
            raise ValueError(f"--fake-faults: {part!r} needs a number") from None
    return options
