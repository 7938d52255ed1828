"""Run the HTTP app under uvicorn with a freshly built engine."""

from __future__ import annotations

import logging

import uvicorn

from embedserve.api import create_app
from embedserve.config import ServerSettings
from embedserve.engine import Engine

log = logging.getLogger("embedserve")


def serve(settings: ServerSettings) -> int:
    """Serve until interrupted; returns the process exit code."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    engine = Engine.from_settings(settings)  # reads the model directories: fails fast
    failures: list[BaseException] = []
    server: uvicorn.Server | None = None

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
        loop="auto",
        http="auto",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    log.info(
        "serving %s on http://%s:%d", ", ".join(engine.served_ids()), settings.host, settings.port
    )
    server.run()
    if failures:
        log.error("exiting: %s", failures[0])
        return 1
    return 0
