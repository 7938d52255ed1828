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


# Tokens one model may hold waiting: 128 concurrent requests of 64 inputs of 256 tokens each
# (2.1M) fit twice over. Fixed, so the same flags give the same limit on every start.
DEFAULT_QUEUE_TOKENS = 4_194_304
# Characters per token above which a text is refused (or cut, with truncation) before it is
# tokenized: real tokens average 3-6 characters; WordPiece reads at most 100 per word.
CHARS_PER_TOKEN_LIMIT = 64


@dataclass(frozen=True)
class BatchingLimits:
    """Limits on one request and on the scheduler of one model."""

    max_batch_tokens: int = 4096
    max_client_batch_size: int = 2048
    max_request_tokens: int = 300_000
    max_queue_tokens: int = DEFAULT_QUEUE_TOKENS
    max_queue_seconds: float = 0.0  # 0: no latency bound; else refuse what would wait longer
    max_padding: float = 0.0  # 0: auto, CPU_MAX_PADDING on cpu, CUDA_MAX_PADDING on cuda
    max_input_chars: int = 0  # 0: auto, CHARS_PER_TOKEN_LIMIT x the model's max length
    max_failed_batches: int = 5  # failed batches in a row that make the model not ready


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
    fake_faults: str = ""  # with backend "fake": injected faults, see `FakeFaults.parse`

    @property
    def resolved_backend(self) -> str:
        """`auto` means ONNX Runtime on CPU and PyTorch on CUDA."""
        if self.backend != "auto":
            return self.backend
        return "torch" if self.device == "cuda" else "onnx"


# The auto body limit: 8 bytes per token of --max-request-tokens (2.4 MB at the default 300k;
# TEI's default is 2 MB). A token is ~5 bytes of English, 6 as a token id or an escaped CJK
# character. The bound also caps the event-loop time of parsing one body (~50 ms, see README).
MIN_PAYLOAD_BYTES = 1 << 20
PAYLOAD_BYTES_PER_TOKEN = 8


@dataclass(frozen=True)
class ServerSettings:
    """Everything `embedserve serve` needs."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: tuple[str, ...] = ()
    max_payload_bytes: int = 0  # 0: auto, from the models' max_request_tokens
    cache_dir: Path = field(default_factory=default_cache_dir)
    log_level: str = "info"
    log_format: str = "text"
    models: tuple[ModelSettings, ...] = (ModelSettings(),)
    # Admission and deadlines.
    max_concurrent_requests: int = 512
    request_timeout_s: float = 600.0
    max_tokenize_chars: int = 32 * 1024 * 1024
    # Connections.
    max_connections: int = 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    keep_alive_timeout_s: float = 5.0
    write_timeout_s: float = 60.0
    max_header_bytes: int = 64 * 1024
    # Shutdown.
    drain_delay_s: float = 5.0
    shutdown_timeout_s: float = 30.0

    @property
    def payload_limit(self) -> int:
        """The body size limit in bytes: the flag, or enough for the largest request allowed."""
        if self.max_payload_bytes:
            return self.max_payload_bytes
        tokens = max(model.limits.max_request_tokens for model in self.models)
        return max(MIN_PAYLOAD_BYTES, tokens * PAYLOAD_BYTES_PER_TOKEN)


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
    secret: bool = False  # never shown in --help or logs

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
        "require `Authorization: Bearer KEY`; repeat for several keys. An empty key stops the "
        "start (fail closed)",
        repeatable=True,
        secret=True,
    ),
    Option(
        "--api-key-file",
        str,
        None,
        "file with one API key per line, # for comments (adds to --api-key); a file without "
        "keys stops the start",
    ),
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
        "admission control: tokens waiting per model before new requests get 429 (bounds "
        "memory; the default fits 128 concurrent requests of 64 inputs of 256 tokens twice)",
    ),
    Option(
        "--max-queue-seconds",
        float,
        _defaults.max_queue_seconds,
        "opt-in latency bound: refuse (429 + Retry-After) a request whose estimated wait in the "
        "queue, at the measured speed, passes this many seconds; 0 = no bound",
    ),
    Option(
        "--max-concurrent-requests",
        int,
        512,
        "embedding and tokenize requests in progress at once (as TEI); more get 429",
    ),
    Option(
        "--request-timeout",
        float,
        600.0,
        "seconds from a request's arrival to its answer; past it the answer is 504 `timeout`, "
        "and work that cannot finish in time is refused with 429 instead of queued",
    ),
    Option(
        "--max-input-chars",
        int,
        _defaults.max_input_chars,
        "characters per input above which it is refused before tokenizing (cut first when "
        f"truncation is asked for); 0 = auto: {CHARS_PER_TOKEN_LIMIT} x the model's max length",
    ),
    Option(
        "--max-tokenize-chars",
        int,
        32 * 1024 * 1024,
        "characters being tokenized at once, over all requests; more get 429",
    ),
    Option(
        "--max-failed-batches",
        int,
        _defaults.max_failed_batches,
        "failed forward batches in a row after which a model reports not ready (503) until a "
        "probe batch succeeds",
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
        0,
        "largest request body accepted (413 above it); 0 = auto: "
        f"{PAYLOAD_BYTES_PER_TOKEN} bytes per token of --max-request-tokens, at least 1 MiB",
    ),
    Option(
        "--max-connections",
        int,
        1024,
        "open connections at once; more are answered 429 with Retry-After",
    ),
    Option(
        "--header-timeout",
        float,
        10.0,
        "seconds a client has to send its request headers (slow clients are cut off)",
    ),
    Option(
        "--body-timeout",
        float,
        60.0,
        "seconds a client has to send its whole request body; then 408",
    ),
    Option("--keep-alive-timeout", float, 5.0, "seconds an idle keep-alive connection stays open"),
    Option(
        "--write-timeout",
        float,
        60.0,
        "seconds a response may wait for a client that does not read it; then the connection "
        "is closed",
    ),
    Option("--max-header-bytes", int, 64 * 1024, "largest request head accepted (431 above it)"),
    Option(
        "--drain-delay",
        float,
        5.0,
        "on SIGTERM/SIGINT: seconds readiness answers 503 while requests are still served, "
        "before the listener closes",
    ),
    Option(
        "--shutdown-timeout",
        float,
        30.0,
        "after the listener closes: seconds in-flight and queued work may take to finish; "
        "what is left is answered 503",
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
    Option(
        "--log-format",
        str,
        "text",
        "text lines, or one JSON object per line (each with the request id)",
        choices=("text", "json"),
    ),
    Option(
        "--fake-faults",
        str,
        "",
        "tests only, with --backend fake: injected faults, e.g. "
        "`delay=0.1,fail_token=2023,kill_token=2024`",
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
        parts = [part.strip() for part in raw.split(",")]
        return parts if option.secret else [part for part in parts if part]
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


def api_keys_from_options(values: Mapping[str, Any]) -> tuple[str, ...]:
    """Keys from --api-key / EMBEDSERVE_API_KEY and --api-key-file; any empty or malformed
    key stops the start, so a missing variable never turns authentication off."""
    keys = [str(key) for key in values.get("api_key") or []]
    for position, key in enumerate(keys):
        if not key.strip():
            raise ValueError(
                f"--api-key / EMBEDSERVE_API_KEY value {position + 1} is empty (is the variable "
                "that should hold it unset?); refusing to start with authentication off"
            )
    key_file = values.get("api_key_file")
    if key_file is not None and not str(key_file).strip():
        raise ValueError(
            "--api-key-file / EMBEDSERVE_API_KEY_FILE is set but empty (is the variable that "
            "should hold it unset?); refusing to start with authentication off"
        )
    if key_file:
        keys += _read_key_file(key_file)
    for position, key in enumerate(keys):
        if not key.isprintable() or any(char.isspace() for char in key):
            raise ValueError(
                f"API key {position + 1} contains spaces or control characters; a key must be "
                "one printable word"
            )
    return tuple(dict.fromkeys(keys))


def settings_from_options(values: Mapping[str, Any]) -> ServerSettings:
    """Build `ServerSettings` from parsed option values (CLI over environment over defaults)."""
    limits = BatchingLimits(
        max_batch_tokens=values["max_batch_tokens"],
        max_client_batch_size=values["max_client_batch_size"],
        max_request_tokens=values["max_request_tokens"],
        max_queue_tokens=values["max_queue_tokens"],
        max_queue_seconds=values["max_queue_seconds"],
        max_padding=values["max_padding"],
        max_input_chars=values["max_input_chars"],
        max_failed_batches=values["max_failed_batches"],
    )
    check_limits(limits)
    defaults = ModelSettings(
        backend=values["backend"],
        device=values["device"],
        matryoshka=bool(values["matryoshka"]),
        trust_remote_code=bool(values["trust_remote_code"]),
        precision=values["precision"],
        limits=limits,
        fake_faults=values.get("fake_faults") or "",
    )
    if defaults.fake_faults:
        from embedserve.backends.fake import parse_faults

        parse_faults(defaults.fake_faults)
    models = _models_from_options(values, defaults)
    settings = ServerSettings(
        host=values["host"],
        port=values["port"],
        api_keys=api_keys_from_options(values),
        max_payload_bytes=values["max_payload_bytes"],
        cache_dir=Path(values["cache_dir"]).expanduser()
        if values.get("cache_dir")
        else default_cache_dir(),
        log_level=values["log_level"],
        log_format=values["log_format"],
        models=models,
        max_concurrent_requests=values["max_concurrent_requests"],
        request_timeout_s=values["request_timeout"],
        max_tokenize_chars=values["max_tokenize_chars"],
        max_connections=values["max_connections"],
        header_timeout_s=values["header_timeout"],
        body_timeout_s=values["body_timeout"],
        keep_alive_timeout_s=values["keep_alive_timeout"],
        write_timeout_s=values["write_timeout"],
        max_header_bytes=values["max_header_bytes"],
        drain_delay_s=values["drain_delay"],
        shutdown_timeout_s=values["shutdown_timeout"],
    )
    check_server_settings(settings)
    return settings


_SERVER_MINIMUMS = {
    "max_payload_bytes": ("--max-payload-bytes", 0),
    "max_concurrent_requests": ("--max-concurrent-requests", 1),
    "request_timeout_s": ("--request-timeout", 0.01),
    "max_tokenize_chars": ("--max-tokenize-chars", 1),
    "max_connections": ("--max-connections", 1),
    "header_timeout_s": ("--header-timeout", 0.01),
    "body_timeout_s": ("--body-timeout", 0.01),
    "keep_alive_timeout_s": ("--keep-alive-timeout", 0.01),
    "write_timeout_s": ("--write-timeout", 0.01),
    "max_header_bytes": ("--max-header-bytes", 1024),
    "drain_delay_s": ("--drain-delay", 0),
    "shutdown_timeout_s": ("--shutdown-timeout", 0),
}


def check_server_settings(settings: ServerSettings) -> None:
    """Reject server settings below their smallest meaningful value."""
    for name, (flag, lowest) in _SERVER_MINIMUMS.items():
        value = getattr(settings, name)
        if value < lowest:
            raise ValueError(f"{flag} must be at least {lowest}, got {value}")


def check_limits(limits: BatchingLimits) -> None:
    """Reject limits below their smallest meaningful value."""
    for name, value in vars(limits).items():
        lowest = {"max_queue_seconds": 0, "max_padding": 0, "max_input_chars": 0}.get(name, 1)
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
