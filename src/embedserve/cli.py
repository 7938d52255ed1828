"""`embedserve` command line: thin, no logic beyond parsing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import embedserve
from embedserve.config import SERVE_OPTIONS, option_defaults, settings_from_options
from embedserve.errors import EmbedServeError


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    defaults = option_defaults()
    for option in SERVE_OPTIONS:
        default = defaults[option.dest]
        shown = ",".join(default) if isinstance(default, list) else default
        suffix = f"; default: {shown}" if shown not in (None, "") else ""
        help_text = f"{option.help} (env {option.env_var}{suffix})"
        if option.is_switch:
            parser.add_argument(
                option.flag, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
        elif option.repeatable:
            parser.add_argument(
                option.flag, action="append", default=None, metavar="VALUE", help=help_text
            )
            parser.set_defaults(**{f"{option.dest}_env": default})
        else:
            parser.add_argument(
                option.flag,
                type=option.type,
                default=default,
                choices=option.choices,
                help=help_text,
            )


def build_parser() -> argparse.ArgumentParser:
    """The full parser; `embedserve --help` also lists every `serve` option."""
    serve = argparse.ArgumentParser(add_help=False)
    _add_serve_options(serve)
    parser = argparse.ArgumentParser(
        prog="embedserve",
        description="OpenAI-compatible text-embeddings server.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="serve options:\n" + _options_text(serve),
    )
    parser.add_argument("--version", action="version", version=embedserve.__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "serve",
        parents=[serve],
        help="serve the OpenAI embeddings API",
        description="Serve the OpenAI embeddings API over HTTP. "
        "Every flag can also be set as EMBEDSERVE_<FLAG>.",
    )
    return parser


def _options_text(parser: argparse.ArgumentParser) -> str:
    text = parser.format_help()
    return text.split("\n\n", 1)[1] if "\n\n" in text else text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `embedserve` script."""
    try:
        parser = build_parser()
    except ValueError as exc:  # a malformed EMBEDSERVE_* variable
        print(f"embedserve: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    values = vars(args)
    for option in SERVE_OPTIONS:
        if option.repeatable and values.get(option.dest) is None:
            values[option.dest] = values.get(f"{option.dest}_env")
    try:
        settings = settings_from_options(values)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    from embedserve.server import serve

    try:
        return serve(settings)
    except EmbedServeError as exc:
        print(f"embedserve: {exc.message}", file=sys.stderr)
        return 1
