"""Settings: EMBEDSERVE_* parsing, `ServerSettings` construction and the CLI parser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from embedserve.settings import (
    BatchingLimits,
    ModelSettings,
    ServerSettings,
    auto,
    settings_from_sources,
)
from tests.unit.settings.build import build


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
    assert model.limits == BatchingLimits(
        max_batch_tokens=4096,
        max_batch_size=512,
        max_client_batch_size=2048,
        max_request_tokens=300_000,
        max_queue_tokens=4_194_304,
        max_queue_seconds=0,
        max_input_chars=0,
        max_failed_batches=5,
        max_padding=0,
    )


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


@pytest.mark.parametrize(("raw", "expected"), [("", None), ("true", True), ("0", False)])
def test_three_state_switch_from_the_environment(raw: str, expected: bool | None) -> None:
    """`--normalize` defaults to the model's own word; an empty variable keeps it so."""
    assert build({"EMBEDSERVE_NORMALIZE": raw}).models[0].normalize is expected


def test_the_bundled_model_beside_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--model all-MiniLM-L6-v2 --model DIR` serves the bundled model and DIR; a directory
    that happens to carry the bundled name is still that directory."""
    first, second = settings_from_sources({"model": ["all-MiniLM-L6-v2", "/m/reranker"]}, {}).models
    assert first.path is None and second.path == Path("/m/reranker")
    (tmp_path / "all-MiniLM-L6-v2").mkdir()
    monkeypatch.chdir(tmp_path)
    [local] = settings_from_sources({"model": ["all-MiniLM-L6-v2"]}, {}).models
    assert local.path == Path("all-MiniLM-L6-v2")
