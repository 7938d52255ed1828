"""How a setting is declared: a pydantic field annotated with `Setting` (flag, help, env).

Everything else (argparse flags, environment parsing, models-file keys, the docs table) is
derived from these declarations by `options()`; no other module lists settings by hand.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

ENV_PREFIX = "EMBEDSERVE_"


@dataclass(frozen=True)
class Setting:
    """Metadata of one settable field: `Annotated[int, Setting("help")]`."""

    help: str
    flags: tuple[str, ...] = ()  # default: --<field-name>; the first is the canonical one
    cli: bool = True  # False: a models-file key only
    secret: bool = False  # never shown in --help, logs or docs
    default_text: str | None = None  # how the docs and --help show the default
    env_aliases: tuple[str, ...] = ()  # older variable names still read


@dataclass(frozen=True)
class Option:
    """One declared setting, as the CLI, the environment and the docs see it."""

    name: str  # the field name: argparse dest and models-file key
    owner: type[BaseModel]
    setting: Setting
    annotation: Any
    default: Any

    @property
    def flags(self) -> tuple[str, ...]:
        """Every spelling of the flag, canonical first."""
        return self.setting.flags or ("--" + self.name.replace("_", "-"),)

    @property
    def flag(self) -> str:
        """The canonical flag."""
        return self.flags[0]

    @property
    def env_var(self) -> str:
        """`EMBEDSERVE_<FLAG>` of the canonical flag."""
        return ENV_PREFIX + self.flag.lstrip("-").replace("-", "_").upper()

    @property
    def env_vars(self) -> tuple[str, ...]:
        """The variable and its older names, in order of precedence."""
        return (self.env_var, *self.setting.env_aliases)

    @property
    def value_type(self) -> Any:
        """The annotation without `None`, and the item type of a tuple."""
        inner = _without_none(self.annotation)
        if typing.get_origin(inner) is tuple:
            inner = typing.get_args(inner)[0]
        return inner

    @property
    def is_switch(self) -> bool:
        """A boolean: `--flag` / `--no-flag`."""
        return _without_none(self.annotation) is bool

    @property
    def repeatable(self) -> bool:
        """A list: the flag may be repeated, the variable is comma-separated."""
        return typing.get_origin(_without_none(self.annotation)) is tuple

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The allowed values of a `Literal` field."""
        value_type = self.value_type
        if typing.get_origin(value_type) is Literal:
            return tuple(str(choice) for choice in typing.get_args(value_type))
        return None

    @property
    def type_name(self) -> str:
        """A short name of the value type for docs and errors."""
        if self.is_switch:
            return "bool"
        if self.choices:
            return "choice"
        if typing.get_origin(_without_none(self.annotation)) is dict:
            return "map of str"
        value_type = self.value_type
        return {int: "int", float: "float", str: "str", Path: "path"}.get(value_type, "str")

    @property
    def shown_default(self) -> str:
        """The default as the docs and --help show it ('' when there is none to show)."""
        if self.setting.default_text is not None:
            return self.setting.default_text
        if self.default in (None, (), ""):
            return ""
        if isinstance(self.default, bool):
            return str(self.default).lower()
        if isinstance(self.default, tuple):
            return ",".join(map(str, self.default))
        return str(self.default)


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def declared(model: type[BaseModel]) -> list[Option]:
    """The settable fields of `model`, in declaration order (nested settings excluded)."""
    found = []
    for name, field in model.model_fields.items():
        setting = next((m for m in field.metadata if isinstance(m, Setting)), None)
        if setting is None:
            continue
        default = None if field.default is PydanticUndefined else field.default
        if field.default_factory is not None:
            default = None
        found.append(Option(name, model, setting, field.annotation, default))
    return found


@cache
def options(*models: type[BaseModel]) -> tuple[Option, ...]:
    """The declared options of several models, checked for clashing names and flags."""
    found = [option for model in models for option in declared(model)]
    seen: dict[str, str] = {}
    for option in found:
        for key in (option.name, option.env_var, *option.flags):
            if key in seen:
                raise TypeError(f"setting {key} is declared twice ({seen[key]}, {option.name})")
            seen[key] = option.name
    return tuple(found)
