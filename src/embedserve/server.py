"""Run the HTTP app under uvicorn with a freshly built engine, and drain it on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from types import FrameType

import uvicorn

from embedserve.api import create_app
from embedserve.api.connections import guarded_protocol
from embedserve.engine import Engine
from embedserve.logs import configure_logging
from embedserve.settings import ServerSettings, auto

log = logging.getLogger("embedserve")
# uvicorn waits this long past --shutdown-timeout before it cancels what is still running.
_CANCEL_MARGIN_S = 5.0


class DrainingServer(uvicorn.Server):
    """uvicorn's server with the shutdown load balancers expect.

    First SIGTERM/SIGINT: readiness answers 503 at once while requests are still served for
    `drain_delay_s`; then the listener closes and in-flight and queued work has
    `shutdown_timeout_s` to finish; what is left is answered 503. A second signal skips the rest
    of the drain delay; a third stops at once. The process then exits 0 (uvicorn would re-raise
    the signal)."""

    def __init__(self, config: uvicorn.Config, engine: Engine, settings: ServerSettings) -> None:
        super().__init__(config)
        self.engine = engine
        self.drain_delay_s = settings.drain_delay_s
        self.shutdown_timeout_s = settings.shutdown_timeout_s
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_until is None:
            self._drain_until = time.monotonic() + self.drain_delay_s
            self.engine.begin_drain()
            log.info(
                "%s received: readiness answers 503; serving %.1fs more before closing the "
                "listener (send it again to skip the wait)",
                signal.Signals(sig).name,
                self.drain_delay_s,
            )
        elif not self.should_exit:
            self._drain_until = time.monotonic()
        else:
            self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        if (
            self._drain_until is not None
            and not self.should_exit
            and time.monotonic() >= self._drain_until
        ):
            log.info(
                "closing the listener; in-flight and queued work has %.1fs to finish",
                self.shutdown_timeout_s,
            )
            self.should_exit = True
            asyncio.get_running_loop().call_later(self.shutdown_timeout_s, self._abort_rest)
        return await super().on_tick(counter)

    def _abort_rest(self) -> None:
        log.warning("shutdown timeout reached: answering what is left with 503")
        self.engine.abort_pending()


def serve(settings: ServerSettings) -> int:
    """Serve until interrupted; returns the process exit code."""
    configure_logging(settings.log_level, settings.log_format)
    engine = Engine.from_settings(settings)  # reads the model directories: fails fast
    failures: list[BaseException] = []
    server: DrainingServer | None = None

    def on_fatal(error: BaseException) -> None:
        failures.append(error)
        if server is not None:
            server.should_exit = True

    app = create_app(engine, settings, on_fatal=on_fatal)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,  # the middleware writes one access line per request, with its id
        loop="auto",
        http=guarded_protocol(settings),
        timeout_keep_alive=max(1, round(settings.keep_alive_timeout_s)),
        timeout_graceful_shutdown=round(settings.shutdown_timeout_s + _CANCEL_MARGIN_S),
        root_path=settings.root_path,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
    )
    server = DrainingServer(config, engine, settings)
    scheme = "https" if settings.ssl_certfile else "http"
    log.info(
        "serving %s on %s://%s:%d%s",
        ", ".join(engine.served_ids()),
        scheme,
        settings.host,
        settings.port,
        settings.root_path,
    )
    log_limits(settings)
    server.run()
    if failures:
        log.error("exiting: %s", failures[0])
        return 1
    return 0


def log_limits(settings: ServerSettings) -> None:
    """The start-up line an operator checks: auth, and every admission and connection limit."""
    keys = len(settings.api_keys)
    log.info(
        "auth: %s",
        f"on, {keys} API key{'s' if keys != 1 else ''}" if keys else "off (no --api-key)",
    )
    log.info(
        "limits: %d concurrent requests, request timeout %.0fs, body %d bytes, %d connections, "
        "header timeout %.0fs, body timeout %.0fs, drain delay %.0fs, shutdown timeout %.0fs",
        settings.max_concurrent_requests,
        settings.request_timeout_s,
        auto.payload_limit(settings),
        settings.max_connections,
        settings.header_timeout_s,
        settings.body_timeout_s,
        settings.drain_delay_s,
        settings.shutdown_timeout_s,
    )
