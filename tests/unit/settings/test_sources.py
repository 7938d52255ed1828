"""Settings: EMBEDSERVE_* parsing, `ServerSettings` construction and the CLI parser."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from embedserve import cli
from embedserve.settings import (
    BatchingLimits,
    ModelSettings,
    ServerSettings,
    auto,
    serve_options,
    settings_from_sources,
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI parser reads os.environ: start every test without EMBEDSERVE_* variables."""
    for name in list(os.environ):
        if name.startswith("EMBEDSERVE_"):
            monkeypatch.delenv(name)


def build(environ: dict[str, str] | None = None, **given: Any) -> ServerSettings:
    """Settings from command-line values `given` over the variables `environ` (default none)."""
    return settings_from_sources(given, environ or {})


def test_defaults_without_environment() -> None:
    built = build()
    assert built.port == 8000
    assert built.host == "127.0.0.1"
    assert built.models[0].limits.max_batch_tokens == 4096
    assert built.models[0].limits.max_request_tokens == 300_000
    assert built.models[0].limits.max_client_batch_size == 2048
    assert built.models[0].matryoshka is False
    assert built.api_keys == ()


def test_environment_is_read() -> None:
    built = build(
        {
            "EMBEDSERVE_PORT": "9001",
            "EMBEDSERVE_HOST": "0.0.0.0",
            "EMBEDSERVE_MAX_BATCH_TOKENS": "1024",
            "EMBEDSERVE_DEVICE": "cuda",
            "EMBEDSERVE_MODEL": "/models/x",
            "OTHER_PORT": "1",
            "PORT": "2",
        }
    )
    assert built.port == 9001
    assert built.host == "0.0.0.0"
    assert built.models[0].limits.max_batch_tokens == 1024
    assert built.models[0].device == "cuda"
    assert [m.path for m in built.models] == [Path("/models/x")]  # a comma-separated list
    assert built.models[0].backend == "auto"


def test_the_process_environment_is_read_only_when_no_mapping_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMBEDSERVE_PORT", "9999")
    assert settings_from_sources({}, {}).port == 8000
    assert settings_from_sources({}).port == 9999


def test_repeatable_options_split_on_commas() -> None:
    built = build(
        {
            "EMBEDSERVE_SERVED_MODEL_NAME": "a, b,,c ",
            "EMBEDSERVE_API_KEY": "k1,k2",
        }
    )
    assert built.models[0].served_names == ("a", "b", "c")
    assert built.api_keys == ("k1", "k2")
    assert build({"EMBEDSERVE_API_KEY": "solo"}).api_keys == ("solo",)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_switch_parsing(raw: str, expected: bool) -> None:
    assert build({"EMBEDSERVE_MATRYOSHKA": raw}).models[0].matryoshka is expected


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("EMBEDSERVE_MATRYOSHKA", "maybe"),
        ("EMBEDSERVE_MATRYOSHKA", "2"),
        ("EMBEDSERVE_PORT", "eighty"),
        ("EMBEDSERVE_PORT", ""),
        ("EMBEDSERVE_PORT", "80.5"),
        ("EMBEDSERVE_MAX_BATCH_TOKENS", "4k"),
    ],
)
def test_bad_environment_values_raise_value_error(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=name):
        build({name: raw})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("EMBEDSERVE_DEVICE", "tpu"),
        ("EMBEDSERVE_BACKEND", "onxx"),
        ("EMBEDSERVE_LOG_LEVEL", "verbose"),
    ],
)
def test_environment_values_outside_choices_are_rejected(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=name):
        build({name: raw})


def test_settings_from_defaults() -> None:
    settings = settings_from_sources({}, {})
    assert isinstance(settings, ServerSettings)
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.api_keys == ()
    assert settings.log_level == "info"
    assert settings.max_payload_bytes == 0  # auto
    assert auto.payload_limit(settings) == 8 * 300_000
    assert settings.max_concurrent_requests == 512
    assert settings.request_timeout_s == 600
    assert settings.log_format == "text"
    [model] = settings.models
    assert model.path is None
    assert model.served_names == ()
    assert model.backend == "auto"
    assert model.device == "cpu"
    assert model.matryoshka is False
    assert model.limits == BatchingLimits()


def test_settings_from_options_values() -> None:
    settings = settings_from_sources(
        {
            "host": "0.0.0.0",
            "port": 9000,
            "model": ["~/models/e5"],
            "served_model_name": ["e5", "e5-alias"],
            "backend": "torch",
            "device": "cuda",
            "matryoshka": True,
            "max_batch_tokens": 2048,
            "max_client_batch_size": 16,
            "max_request_tokens": 5000,
            "max_queue_tokens": 9000,
            "max_payload_bytes": 1234,
            "cache_dir": "/tmp/embedserve-cache",
            "log_level": "debug",
        },
        {},
    )
    assert settings.host == "0.0.0.0"
    assert settings.port == 9000
    assert settings.max_payload_bytes == 1234
    assert settings.cache_dir == Path("/tmp/embedserve-cache")
    assert settings.log_level == "debug"
    [model] = settings.models
    assert model.path == Path("~/models/e5").expanduser()
    assert model.served_names == ("e5", "e5-alias")
    assert model.backend == "torch"
    assert model.device == "cuda"
    assert model.matryoshka is True
    assert model.limits == BatchingLimits(
        max_batch_tokens=2048,
        max_client_batch_size=16,
        max_request_tokens=5000,
        max_queue_tokens=9000,
    )


def test_api_keys_from_flag_and_file_are_combined(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# team keys\nfile-key-1\n\n  file-key-2  \n", encoding="utf-8")
    settings = build(api_keys=["flag-key"], api_key_file=str(key_file))
    assert settings.api_keys == ("flag-key", "file-key-1", "file-key-2")
    only_file = build(api_key_file=str(key_file))
    assert only_file.api_keys == ("file-key-1", "file-key-2")


def test_missing_api_key_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--api-key-file .*absent\.txt"):
        build(api_key_file=str(tmp_path / "absent.txt"))


@pytest.mark.parametrize("keys", [[""], ["  "], ["good", ""]])
def test_empty_api_keys_refuse_to_start(keys: list[str]) -> None:
    with pytest.raises(ValueError, match=r"empty.*refusing to start"):
        build(api_keys=keys)


def test_empty_api_key_variable_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="empty"):
        build({"EMBEDSERVE_API_KEY": ""})
    with pytest.raises(ValueError, match="empty"):
        build({"EMBEDSERVE_API_KEY": "a,,b"})


def test_empty_key_file_variable_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="set but empty"):
        build({"EMBEDSERVE_API_KEY_FILE": ""})


def test_key_file_without_keys_refuses_to_start(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# keys go here\n\n   \n# none yet\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no keys"):
        build(api_key_file=str(key_file))


def test_keys_with_spaces_are_refused() -> None:
    with pytest.raises(ValueError, match="one printable word"):
        build(api_keys=["two words"])


def test_api_key_never_shown_in_help(monkeypatch: pytest.MonkeyPatch) -> None:
    from embedserve.cli import build_parser

    monkeypatch.setenv("EMBEDSERVE_API_KEY", "sekrit-from-env")
    assert "sekrit-from-env" not in build_parser().format_help()


@pytest.mark.parametrize(
    "name", ["max_batch_tokens", "max_client_batch_size", "max_request_tokens"]
)
@pytest.mark.parametrize("bad", [0, -1])
def test_limits_below_one_are_rejected(name: str, bad: int) -> None:
    flag = "--" + name.replace("_", "-")
    with pytest.raises(ValueError, match=re.escape(flag)):
        build(**{name: bad})
    # 1 is the smallest accepted value.
    built = build(**{name: 1})
    assert getattr(built.models[0].limits, name) == 1


def test_queue_limits_are_fixed_and_the_latency_bound_opt_in() -> None:
    limits = build().models[0].limits
    assert limits.max_queue_tokens == 4_194_304 and limits.max_queue_seconds == 0
    with pytest.raises(ValueError, match="--max-queue-tokens"):
        build(max_queue_tokens=0)
    with pytest.raises(ValueError, match="--max-queue-seconds"):
        build(max_queue_seconds=-1)
    bounded = build(max_queue_seconds=0.5).models[0].limits
    assert bounded.max_queue_seconds == 0.5


@pytest.mark.parametrize(
    ("name", "flag", "bad"),
    [
        ("max_concurrent_requests", "--max-concurrent-requests", 0),
        ("request_timeout_s", "--request-timeout", 0),
        ("max_connections", "--max-connections", 0),
        ("header_timeout_s", "--header-timeout", 0),
        ("drain_delay_s", "--drain-delay", -1),
        ("max_header_bytes", "--max-header-bytes", 10),
    ],
)
def test_server_limits_below_their_minimum_are_rejected(name: str, flag: str, bad: float) -> None:
    with pytest.raises(ValueError, match=re.escape(flag)):
        build(**{name: bad})


def test_unknown_command_line_values_are_a_programming_error() -> None:
    with pytest.raises(TypeError, match="request_timeout"):
        build(request_timeout=5)


def test_fake_faults_are_checked_at_start() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        build(fake_faults="explode=1")


@pytest.mark.parametrize(
    ("backend", "device", "resolved"),
    [
        ("auto", "cpu", "onnx"),
        ("auto", "cuda", "torch"),
        ("onnx", "cuda", "onnx"),
        ("torch", "cpu", "torch"),
        ("fake", "cuda", "fake"),
    ],
)
def test_resolved_backend(backend: str, device: str, resolved: str) -> None:
    assert auto.backend(ModelSettings(backend=backend, device=device)) == resolved


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


def test_indented_comment_in_api_key_file_is_not_a_key(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text("real-key\n   # a comment\n", encoding="utf-8")
    settings = build(api_key_file=str(key_file))
    assert settings.api_keys == ("real-key",)
