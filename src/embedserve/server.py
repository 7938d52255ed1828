"""Run the HTTP app under uvicorn with a freshly built engine, and drain it on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
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

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Close the listener as uvicorn does, but first take the connections the kernel has
        already accepted for it: closing a listener resets those, so a client that connected
        just before would see its request cut; here it is served, with `connection: close`."""
        loop = asyncio.get_running_loop()
        adopted = [loop.create_task(self._serve_adopted(conn)) for conn in self._take_backlog()]
        await super().shutdown(sockets)  # closes the listeners before it first awaits
        await asyncio.gather(*adopted, return_exceptions=True)

    def _take_backlog(self) -> list[socket.socket]:
        """Every connection waiting in the listeners' accept queues, taken without waiting."""
        taken = []
        for server in self.servers:
            for listener in server.sockets:
                with socket.socket(fileno=os.dup(listener.fileno())) as same:
                    same.setblocking(False)
                    while True:
                        try:
                            connection, _ = same.accept()
                        except OSError:  # BlockingIOError: the queue is empty
                            break
                        taken.append(connection)
        return taken

    async def _serve_adopted(self, connection: socket.socket) -> None:
        """Serve one adopted connection as a closing one: its request, then close."""
        loop = asyncio.get_running_loop()

        def factory() -> asyncio.Protocol:  # as uvicorn's own startup makes its protocols
            return self.config.http_protocol_class(  # type: ignore[call-arg]
                config=self.config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=loop,
            )

        try:
            _, protocol = await loop.connect_accepted_socket(
                factory, connection, ssl=self.config.ssl
            )
        except OSError:
            connection.close()
            return
        protocol.shutdown()  # type: ignore[attr-defined]  # uvicorn's protocols have it

    def _abort_rest(self) -> None:
        log.warning("shutdown timeout reached: answering what is left with 503")
        self.engine.abort_pending()


def serve(settings: ServerSettings) -> int:
    """Serve until interrupted; returns the process exit code."""
    configure_logging(settings.log_level, settings.log_format)
    engine = Engine.from_settings(settings)  # reads the model directories: fails fast
    failures: list[BaseException] = []
    server = build_server(engine, settings, on_fatal=failures.append)
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


def build_server(
    engine: Engine, settings: ServerSettings, on_fatal: Callable[[BaseException], None]
) -> DrainingServer:
    """The app on `engine` under a draining uvicorn server configured from `settings`; a fatal
    engine error is passed to `on_fatal` and stops the server."""
    server: DrainingServer | None = None

    def fatal(error: BaseException) -> None:
        on_fatal(error)
        if server is not None:
            server.should_exit = True

    app = create_app(engine, settings, on_fatal=fatal)
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
    return server


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
