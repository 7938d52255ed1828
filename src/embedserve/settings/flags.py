"""argparse flags for declared settings: one per `Option`, nothing read from the environment."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from embedserve.settings.declare import Option


def add_setting_flags(parser: argparse.ArgumentParser, options: Iterable[Option]) -> None:
    """One flag per option, defaulting to "not given" (the environment and the declared
    default are applied later, by `settings_from_sources`)."""
    for option in options:
        shown = "" if option.setting.secret else option.shown_default
        suffix = f"; default: {shown}" if shown else ""
        help_text = f"{option.setting.help} (env {option.env_var}{suffix})"
        common: dict[str, Any] = {"dest": option.name, "default": argparse.SUPPRESS}
        if option.is_switch:
            action = argparse.BooleanOptionalAction
            parser.add_argument(*option.flags, action=action, help=help_text, **common)
        elif option.repeatable:
            parser.add_argument(
                *option.flags, action="append", metavar="VALUE", help=help_text, **common
            )
        else:
            value_type = option.value_type if option.type_name in ("int", "float") else str
            parser.add_argument(
                *option.flags, type=value_type, choices=option.choices, help=help_text, **common
            )
