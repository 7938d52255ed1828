"""Server settings, and the inputs of `serve` that name what to serve (models, keys)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from embedserve.settings.declare import Setting
from embedserve.settings.model import ModelSettings

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def default_cache_dir() -> Path:
    """Where exported model artefacts are cached (XDG_CACHE_HOME aware)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "embedserve"


def resolve_cache_dir(given: str | Path | None = None) -> Path:
    """The export cache outside `serve` (library, export, verify): the value given, else
    EMBEDSERVE_CACHE_DIR, else the XDG default."""
    chosen = given or os.environ.get("EMBEDSERVE_CACHE_DIR")
    return Path(chosen).expanduser() if chosen else default_cache_dir()


class ServeInputs(BaseModel):
    """What to serve: model directories or a models file, their names, and key files. These
    expand into `ServerSettings.models` and `.api_keys`."""

    model_config = _FROZEN

    model: Annotated[
        tuple[str, ...],
        Setting(
            "model directory (Hugging Face or sentence-transformers layout); repeat to serve "
            "several, each under its directory's name (`all-MiniLM-L6-v2`: the bundled model)",
            default_text="the bundled sentence-transformers/all-MiniLM-L6-v2",
        ),
    ] = ()
    models_file: Annotated[
        str | None,
        Setting(
            "JSON or YAML file listing the models to serve, with per-model settings (see "
            "docs/configuration.md); flags give the defaults of its entries",
            flags=("--models-file", "--config"),
            env_aliases=("EMBEDSERVE_CONFIG",),
        ),
    ] = None
    served_model_name: Annotated[
        tuple[str, ...],
        Setting(
            "id to serve the model under; repeat for aliases (first is the id)",
            default_text="the bundled model's id, or the model directory's name",
        ),
    ] = ()
    api_key_file: Annotated[
        str | None,
        Setting(
            "file with one API key per line, # for comments (adds to --api-key); a file "
            "without keys stops the start"
        ),
    ] = None


class ServerSettings(BaseModel):
    """Everything `embedserve serve` needs."""

    model_config = _FROZEN

    host: Annotated[str, Setting("interface to listen on")] = "127.0.0.1"
    port: Annotated[int, Setting("TCP port to listen on"), Field(ge=0, le=65535)] = 8000
    api_keys: Annotated[
        tuple[str, ...],
        Setting(
            "require `Authorization: Bearer KEY`; repeat for several keys. An empty key stops "
            "the start (fail closed)",
            flags=("--api-key",),
            secret=True,
        ),
    ] = ()
    cache_dir: Annotated[
        Path,
        Setting(
            "where exported ONNX models are cached",
            default_text="$XDG_CACHE_HOME/embedserve",
        ),
    ] = Field(default_factory=default_cache_dir)
    log_level: Annotated[
        Literal["critical", "error", "warning", "info", "debug"], Setting("log level")
    ] = "info"
    log_format: Annotated[
        Literal["text", "json"],
        Setting("text lines, or one JSON object per line (each with the request id)"),
    ] = "text"
    # Admission and deadlines.
    max_concurrent_requests: Annotated[
        int,
        Setting("embedding and tokenize requests in progress at once (as TEI); more get 429"),
        Field(ge=1),
    ] = 512
    request_timeout_s: Annotated[
        float,
        Setting(
            "seconds from a request's arrival to its answer; past it the answer is 504 "
            "`timeout`, and work that cannot finish in time is refused with 429 instead of queued",
            flags=("--request-timeout",),
        ),
        Field(ge=0.01),
    ] = 600.0
    max_tokenize_chars: Annotated[
        int,
        Setting("characters being tokenized at once, over all requests; more get 429"),
        Field(ge=1),
    ] = 32 * 1024 * 1024
    max_payload_bytes: Annotated[
        int,
        Setting(
            "largest request body accepted (413 above it); 0 = auto: 8 bytes per token of "
            "--max-request-tokens, at least 1 MiB"
        ),
        Field(ge=0),
    ] = 0
    # Connections.
    max_connections: Annotated[
        int,
        Setting("open connections at once; more are answered 429 with Retry-After"),
        Field(ge=1),
    ] = 1024
    header_timeout_s: Annotated[
        float,
        Setting(
            "seconds a client has to send its request headers (slow clients are cut off)",
            flags=("--header-timeout",),
        ),
        Field(ge=0.01),
    ] = 10.0
    body_timeout_s: Annotated[
        float,
        Setting(
            "seconds a client has to send its whole request body; then 408",
            flags=("--body-timeout",),
        ),
        Field(ge=0.01),
    ] = 60.0
    keep_alive_timeout_s: Annotated[
        float,
        Setting(
            "seconds an idle keep-alive connection stays open", flags=("--keep-alive-timeout",)
        ),
        Field(ge=0.01),
    ] = 5.0
    write_timeout_s: Annotated[
        float,
        Setting(
            "seconds a response may wait for a client that does not read it; then the "
            "connection is closed",
            flags=("--write-timeout",),
        ),
        Field(ge=0.01),
    ] = 60.0
    max_header_bytes: Annotated[
        int, Setting("largest request head accepted (431 above it)"), Field(ge=1024)
    ] = 64 * 1024
    cors_allow_origins: Annotated[
        tuple[str, ...],
        Setting(
            "allow browsers on this origin to call the API (CORS); repeat for several, `*` for "
            "any. Default: no CORS headers",
            flags=("--cors-allow-origin",),
        ),
    ] = ()
    root_path: Annotated[
        str,
        Setting("URL prefix a reverse proxy serves the API under (ASGI root_path), e.g. /embed"),
    ] = ""
    playground: Annotated[
        bool,
        Setting(
            "serve the playground page at /playground (and redirect / to it): try a model "
            "in a browser; `--no-playground` turns it off"
        ),
    ] = True
    ssl_keyfile: Annotated[
        Path | None, Setting("TLS private key file (PEM); serve HTTPS with --ssl-certfile")
    ] = None
    ssl_certfile: Annotated[
        Path | None, Setting("TLS certificate chain file (PEM); serve HTTPS with --ssl-keyfile")
    ] = None
    # Shutdown.
    drain_delay_s: Annotated[
        float,
        Setting(
            "on SIGTERM/SIGINT: seconds readiness answers 503 while requests are still served, "
            "before the listener closes",
            flags=("--drain-delay",),
        ),
        Field(ge=0),
    ] = 5.0
    shutdown_timeout_s: Annotated[
        float,
        Setting(
            "after the listener closes: seconds in-flight and queued work may take to finish; "
            "what is left is answered 503",
            flags=("--shutdown-timeout",),
        ),
        Field(ge=0),
    ] = 30.0
    models: tuple[ModelSettings, ...] = (ModelSettings(),)

    @model_validator(mode="after")
    def _tls_needs_both_files(self) -> ServerSettings:
        if (self.ssl_keyfile is None) != (self.ssl_certfile is None):
            raise ValueError("--ssl-keyfile and --ssl-certfile go together: give both or neither")
        return self
