"""The configuration tables of docs/configuration.md, generated from the declarations.

`python -m embedserve.settings.docs docs/configuration.md` rewrites the generated blocks;
`--check` exits 1 when the file has drifted (a test runs that check)."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel

from embedserve.settings.declare import Option, declared
from embedserve.settings.model import BatchingLimits, ModelSettings
from embedserve.settings.server import ServeInputs, ServerSettings

SERVE_BLOCK = "serve options"
FILE_BLOCK = "models file keys"
_SECTIONS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("Server", ServerSettings),
    ("What to serve", ServeInputs),
    (
        "Per model (defaults of every model; models-file keys override them per entry)",
        ModelSettings,
    ),
    ("Per-model limits (models-file keys too)", BatchingLimits),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _flag_cell(option: Option) -> str:
    spelled = [f"`{flag}`" for flag in option.flags]
    if option.is_switch:
        spelled[0] = f"`{option.flag}` / `--no-{option.flag[2:]}`"
    if option.repeatable:
        spelled[0] += " (repeatable)"
    return ", ".join(spelled)


def _allowed(option: Option) -> str:
    if option.choices:
        return " Choices: " + ", ".join(f"`{choice}`" for choice in option.choices) + "."
    return ""


def serve_table() -> str:
    """Every `serve` flag with its variable, default and help, by section."""
    lines = []
    for title, model in _SECTIONS:
        rows = [o for o in declared(model) if o.setting.cli]
        lines += [f"**{title}**", "", "| Flag | Environment | Default | Description |"]
        lines.append("|---|---|---|---|")
        for option in rows:
            env = ", ".join(f"`{name}`" for name in option.env_vars)
            default = f"`{option.shown_default}`" if option.shown_default else ""
            if option.setting.secret or option.setting.default_text:
                default = option.shown_default
            text = _cell(option.setting.help + "." + _allowed(option))
            lines.append(f"| {_flag_cell(option)} | {env} | {_cell(default)} | {text} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def models_file_table() -> str:
    """The keys of one models-file entry."""
    lines = ["| Key | Type | Same as | Description |", "|---|---|---|---|"]
    lines.append(
        "| `id` | str | `--served-model-name` | the served id (default: the directory's name) |"
    )
    lines.append(
        "| `aliases` | list of str | more `--served-model-name` | other names of the model |"
    )
    lines.append(
        "| `path` | str | `--model` | model directory, relative to the models file "
        "(default: the bundled model) |"
    )
    for model in (ModelSettings, BatchingLimits):
        for option in declared(model):
            kind = "list of int" if option.repeatable else option.type_name
            flag = f"`{option.flag}`" if option.setting.cli else ""
            text = _cell(option.setting.help + "." + _allowed(option))
            lines.append(f"| `{option.name}` | {kind} | {flag} | {text} |")
    return "\n".join(lines) + "\n"


def render(document: str) -> str:
    """`document` with both generated blocks replaced by the current tables."""
    for block, table in ((SERVE_BLOCK, serve_table()), (FILE_BLOCK, models_file_table())):
        begin = next(
            (
                line
                for line in document.splitlines()
                if line.startswith(f"<!-- BEGIN GENERATED: {block}")
            ),
            None,
        )
        end = f"<!-- END GENERATED: {block} -->"
        if begin is None or end not in document:
            raise ValueError(f"the document has no generated block {block!r}")
        head, rest = document.split(begin, 1)
        _, tail = rest.split(end, 1)
        document = f"{head}{begin}\n\n{table}\n{end}{tail}"
    return document


def main(argv: list[str]) -> int:
    """`[--check] PATH`: rewrite the generated blocks of PATH, or check them."""
    check = "--check" in argv
    paths = [arg for arg in argv if arg != "--check"]
    path = Path(paths[0] if paths else "docs/configuration.md")
    current = path.read_text(encoding="utf-8")
    wanted = render(current)
    if check:
        if wanted != current:
            print(f"{path} is out of date: run python -m embedserve.settings.docs {path}")
            return 1
        return 0
    path.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
