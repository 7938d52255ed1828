"""`embedserve` command line: the serve flags argparse builds from the declarations, --help,
and exit codes (the environment is read when `serve` runs only)."""

from __future__ import annotations

import re

import pytest

from embedserve import cli
from embedserve.settings import (
    serve_options,
    settings_from_sources,
)


def test_api_key_never_shown_in_help(monkeypatch: pytest.MonkeyPatch) -> None:
    from embedserve.cli import build_parser

    monkeypatch.setenv("EMBEDSERVE_API_KEY", "sekrit-from-env")
    assert "sekrit-from-env" not in build_parser().format_help()


def test_cli_parses_serve_flags() -> None:
    args = cli.build_parser().parse_args(
        [
            *("serve", "--port", "9000"),
            *("--served-model-name", "a", "--served-model-name", "b"),
            *("--api-key", "k"),
        ]
    )
    assert args.command == "serve"
    assert args.port == 9000
    assert args.served_model_name == ["a", "b"]
    assert args.api_keys == ["k"]
    assert "host" not in args and "matryoshka" not in args  # not given: decided at serve time
    built = settings_from_sources(vars(args), {})
    assert (built.host, built.models[0].matryoshka) == ("127.0.0.1", False)


def test_cli_switch_and_choices() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["serve", "--matryoshka"]).matryoshka is True
    assert parser.parse_args(["serve", "--no-matryoshka"]).matryoshka is False
    assert parser.parse_args(["serve", "--device", "cuda"]).device == "cuda"
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--device", "tpu"])
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--port", "eighty"])


def test_cli_defaults_come_from_the_environment() -> None:
    environ = {
        "EMBEDSERVE_PORT": "9100",
        "EMBEDSERVE_MATRYOSHKA": "true",
        "EMBEDSERVE_API_KEY": "e1,e2",
    }
    parser = cli.build_parser()
    built = settings_from_sources(vars(parser.parse_args(["serve"])), environ)
    assert built.port == 9100
    assert built.models[0].matryoshka is True
    assert built.api_keys == ("e1", "e2")
    # The command line wins over the environment.
    args = parser.parse_args(["serve", "--port", "9200", "--no-matryoshka", "--api-key", "c"])
    built = settings_from_sources(vars(args), environ)
    assert built.port == 9200
    assert built.models[0].matryoshka is False
    assert built.api_keys == ("c",)


def test_bad_environment_value_stops_serve_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMBEDSERVE_PORT", "not-a-port")
    cli.build_parser()  # the environment is not read while the parser is built
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve"])
    assert exit_info.value.code == 2
    assert "EMBEDSERVE_PORT='not-a-port'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as version:
        cli.main(["--version"])
    assert version.value.code == 0


def _help_entries(text: str) -> dict[str, str]:
    """Map each flag of a help text to its whole entry (wrapped lines joined, spaces collapsed)."""
    entries: dict[str, str] = {}
    flag: str | None = None
    for line in text.splitlines():
        if line.startswith("  -"):
            flag = line.split()[0].rstrip(",")
            entries[flag] = line
        elif flag is not None and line.startswith("    "):
            entries[flag] += " " + line
        else:
            flag = None
    return {flag: " ".join(entry.split()) for flag, entry in entries.items()}


def test_help_lists_every_serve_option_with_its_environment_variable() -> None:
    entries = _help_entries(cli.build_parser().format_help())
    for option in serve_options():
        assert option.flag in entries, f"{option.flag} missing from --help"
        assert re.search(rf"\(env {option.env_var}[;)]", entries[option.flag]), option.flag
        assert option.env_var == "EMBEDSERVE_" + option.flag[2:].replace("-", "_").upper()


def test_serve_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["serve", "--help"])
    assert exit_info.value.code == 0
    entries = _help_entries(capsys.readouterr().out)
    for option in serve_options():
        assert re.search(rf"\(env {option.env_var}[;)]", entries[option.flag]), option.flag


def test_help_shows_the_declared_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSERVE_MAX_BATCH_TOKENS", "777")
    entries = _help_entries(cli.build_parser().format_help())
    assert "default: 4096)" in entries["--max-batch-tokens"]
    assert "default: 300000)" in entries["--max-request-tokens"]
    assert "default: 600.0)" in entries["--request-timeout"]


@pytest.mark.parametrize(
    "argv", [["--version"], ["bench", "--help"], ["export", "--help"], ["verify", "--help"]]
)
def test_a_bad_serve_variable_does_not_break_other_commands(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDSERVE_PORT", "not-a-port")
    monkeypatch.setenv("EMBEDSERVE_MAX_BATCH_TOKENS", "lots")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0


def test_dtype_is_an_alias_of_precision_and_max_model_len_of_the_max_length() -> None:
    args = cli.build_parser().parse_args(
        ["serve", "--dtype", "fp16", "--max-model-len", "128", "--pooling", "cls"]
    )
    (model,) = settings_from_sources(vars(args), {}).models
    assert (model.precision, model.max_length, model.pooling) == ("fp16", 128, "cls")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["serve", "--dtype", "bf16"])
