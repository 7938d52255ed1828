"""Settings: frozen dataclasses, the option table, and the only reader of EMBEDSERVE_* variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "EMBEDSERVE_"
BACKENDS = ("auto", "onnx", "torch", "openvino", "fake")
PRECISIONS = ("fp32", "fp16", "int8")
DEVICES = ("cpu", "cuda")


def default_cache_dir() -> Path:
    """Where exported model artefacts are cached (XDG_CACHE_HOME aware)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "embedserve"


@dataclass(frozen=True)
class BatchingLimits:
    """Limits on one request and on the scheduler of one model."""

    max_batch_tokens: int = 4096
    max_client_batch_size: int = 2048
    max_request_tokens: int = 300_000
    max_queue_tokens: int = 0  # 0: auto, `max_queue_seconds` of work as measured at start-up
    max_queue_seconds: float = 2.0
    max_padding: float = 0.0  # 0: auto, CPU_MAX_PADDING on cpu, CUDA_MAX_PADDING on cuda


# Share of a batch's computed tokens that may be padding. Measured on 2 AVX2 cores, mixed
# lengths: 0.05 gives 6.3-6.5k tokens/s over HTTP, 0.25 gives 5.6k, no limit 4.5k.
# GPUs gain more from large batches than they lose to padding.
CPU_MAX_PADDING = 0.05
CUDA_MAX_PADDING = 0.5


@dataclass(frozen=True)
class ModelSettings:
    """How to load and serve one model."""

    path: Path | None = None  # None: the bundled default model
    served_names: tuple[str, ...] = ()  # first is the id, the rest are aliases
    backend: str = "auto"
    device: str = "cpu"
    matryoshka: bool = False
    # Overrides of what the model directory declares (None: take the directory's word).
    pooling: str | None = None
    normalize: bool | None = None
    max_length: int | None = None
    trust_remote_code: bool = False
    precision: str = "fp32"  # fp16 (onnx) or int8 (openvino weights)
    matryoshka_dimensions: tuple[int, ...] = ()  # restricts `dimensions` to these (and native)
    limits: BatchingLimits = field(default_factory=BatchingLimits)

    @property
    def resolved_backend(self) -> str:
        """`auto` means ONNX Runtime on CPU and PyTorch on CUDA."""
        if self.backend != "auto":
            return self.backend
        return "torch" if self.device == "cuda" else "onnx"


@dataclass(frozen=True)
class ServerSettings:
    """Everything `embedserve serve` needs."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: tuple[str, ...] = ()
    max_payload_bytes: int = 16 * 1024 * 1024
    cache_dir: Path = field(default_factory=default_cache_dir)
    log_level: str = "info"
    models: tuple[ModelSettings, ...] = (ModelSettings(),)


@dataclass(frozen=True)
class Option:
    """One `serve` flag: its CLI spelling, environment variable, type, default and help."""

    flag: str
    type: type
    default: Any
    help: str
    repeatable: bool = False
    choices: tuple[str, ...] | None = None
    is_switch: bool = False

    @property
    def dest(self) -> str:
        """The attribute name argparse stores the value under."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env_var(self) -> str:
        """The environment variable that sets this option (`EMBEDSERVE_<FLAG>`)."""
        return ENV_PREFIX + self.dest.upper()


_defaults = BatchingLimits()
SERVE_OPTIONS: tuple[Option, ...] = (
    Option("--host", str, "127.0.0.1", "interface to listen on"),
    Option("--port", int, 8000, "TCP port to listen on"),
    Option(
        "--model",
        str,
        None,
        "model directory (Hugging Face or sentence-transformers layout); repeat to serve "
        "several, each under its directory's name. Default: the bundled "
        "sentence-transformers/all-MiniLM-L6-v2",
        repeatable=True,
    ),
    Option(
        "--config",
        str,
        None,
        "JSON or YAML file listing the models to serve, with per-model settings "
        "(see README, 'Models'); flags give the defaults of its entries",
    ),
    Option(
        "--served-model-name",
        str,
        None,
        "id to serve the model under; repeat for aliases (first is the id). "
        "Default: the bundled model's id, or the model directory's name",
        repeatable=True,
    ),
    Option(
        "--api-key",
        str,
        None,
        "require `Authorization: Bearer KEY`; repeat for several keys",
        repeatable=True,
    ),
    Option("--api-key-file", str, None, "file with one API key per line (adds to --api-key)"),
    Option("--device", str, "cpu", "where the forward pass runs", choices=DEVICES),
    Option(
        "--backend",
        str,
        "auto",
        "inference runtime: auto = onnx on cpu, torch on cuda; openvino = OpenVINO IR on cpu; "
        "fake = hash vectors, for tests",
        choices=BACKENDS,
    ),
    Option(
        "--precision",
        str,
        "fp32",
        "weights precision: fp16 with --backend onnx, int8 with --backend openvino "
        "(measure it first with `embedserve export`)",
        choices=PRECISIONS,
    ),
    Option(
        "--max-batch-tokens",
        int,
        _defaults.max_batch_tokens,
        "padded-token budget of one forward batch",
    ),
    Option(
        "--max-client-batch-size",
        int,
        _defaults.max_client_batch_size,
        "most inputs accepted in one request",
    ),
    Option(
        "--max-request-tokens",
        int,
        _defaults.max_request_tokens,
        "most tokens accepted in one request (all inputs together)",
    ),
    Option(
        "--max-queue-tokens",
        int,
        _defaults.max_queue_tokens,
        "admission control: tokens waiting per model before new requests get 429; "
        "0 = auto: --max-queue-seconds of work, from the speed measured at start-up",
    ),
    Option(
        "--max-queue-seconds",
        float,
        _defaults.max_queue_seconds,
        "with --max-queue-tokens 0: how much queued work (in seconds of forward passes) is "
        "admitted; lower it to bound latency under overload",
    ),
    Option(
        "--max-padding",
        float,
        _defaults.max_padding,
        "largest share of padding tokens in a forward batch (length-sorted batches are cut "
        f"beyond it); 0 = auto: {CPU_MAX_PADDING} on cpu, {CUDA_MAX_PADDING} on cuda",
    ),
    Option(
        "--max-payload-bytes",
        int,
        16 * 1024 * 1024,
        "largest request body accepted (413 above it)",
    ),
    Option(
        "--matryoshka",
        bool,
        False,
        "declare the model matryoshka-trained: accept `dimensions` below the native size",
        is_switch=True,
    ),
    Option(
        "--trust-remote-code",
        bool,
        False,
        "allow models whose config.json maps to their own Python code (auto_map) to run it",
        is_switch=True,
    ),
    Option(
        "--cache-dir",
        str,
        None,
        "where exported ONNX models are cached (default: $XDG_CACHE_HOME/embedserve)",
    ),
    Option(
        "--log-level",
        str,
        "info",
        "log level",
        choices=("critical", "error", "warning", "info", "debug"),
    ),
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_env_value(option: Option, raw: str) -> Any:
    if option.is_switch:
        value = raw.strip().lower()
        if value not in _TRUE | _FALSE:
            raise ValueError(f"{option.env_var}={raw!r}: expected true or false")
        return value in _TRUE
    if option.repeatable:
        return [part.strip() for part in raw.split(",") if part.strip()]
    try:
        value = option.type(raw)
    except ValueError as exc:
        raise ValueError(f"{option.env_var}={raw!r}: expected {option.type.__name__}") from exc
    if option.choices is not None and value not in option.choices:
        raise ValueError(f"{option.env_var}={raw!r}: choose one of {', '.join(option.choices)}")
    return value


def option_defaults(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Each option's default, taken from `EMBEDSERVE_<FLAG>` where set (lists: comma-separated)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for option in SERVE_OPTIONS:
        raw = environ.get(option.env_var)
        values[option.dest] = option.default if raw is None else _parse_env_value(option, raw)
    return values


def _read_key_file(path: str) -> list[str]:
    lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    keys = (line.strip() for line in lines)
    return [key for key in keys if key and not key.startswith("#")]


def settings_from_options(values: Mapping[str, Any]) -> ServerSettings:
    """Build `ServerSettings` from parsed option values (CLI over environment over defaults)."""
    keys = list(values.get("api_key") or [])
    if values.get("api_key_file"):
        keys += _read_key_file(values["api_key_file"])
    limits = BatchingLimits(
        max_batch_tokens=values["max_batch_tokens"],
        max_client_batch_size=values["max_client_batch_size"],
        max_request_tokens=values["max_request_tokens"],
        max_queue_tokens=values["max_queue_tokens"],
        max_queue_seconds=values["max_queue_seconds"],
        max_padding=values["max_padding"],
    )
    check_limits(limits)
    defaults = ModelSettings(
        backend=values["backend"],
        device=values["device"],
        matryoshka=bool(values["matryoshka"]),
        trust_remote_code=bool(values["trust_remote_code"]),
        precision=values["precision"],
        limits=limits,
    )
    models = _models_from_options(values, defaults)
    return ServerSettings(
        host=values["host"],
        port=values["port"],
        api_keys=tuple(keys),
        max_payload_bytes=values["max_payload_bytes"],
        cache_dir=Path(values["cache_dir"]).expanduser()
        if values.get("cache_dir")
        else default_cache_dir(),
        log_level=values["log_level"],
        models=models,
    )


def check_limits(limits: BatchingLimits) -> None:
    """Reject limits below their smallest meaningful value."""
    for name, value in vars(limits).items():
        lowest = {"max_queue_tokens": 0, "max_queue_seconds": 0.01, "max_padding": 0}.get(name, 1)
        if value < lowest:
            raise ValueError(f"--{name.replace('_', '-')} must be at least {lowest}, got {value}")


def _models_from_options(
    values: Mapping[str, Any], defaults: ModelSettings
) -> tuple[ModelSettings, ...]:
    """The bundled model, one per `--model`, or the entries of `--config`."""
    paths = [Path(p).expanduser() for p in values.get("model") or []]
    names = tuple(values.get("served_model_name") or ())
    if values.get("config"):
        if paths or names:
            raise ValueError("give models either in --config or with --model, not both")
        from embedserve.config_file import load_models_file

        return load_models_file(Path(values["config"]).expanduser(), defaults)
    if len(paths) > 1 and names:
        raise ValueError(
            "--served-model-name names one model; to name several, use --config "
            "(each --model is otherwise served under its directory's name)"
        )
    if not paths:
        return (replace(defaults, served_names=names),)
    return tuple(replace(defaults, path=path, served_names=names) for path in paths)
