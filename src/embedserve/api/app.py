"""The app factory: routes, the error table and middleware over an engine it is given."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException
from starlette.responses import Response

import embedserve
from embedserve.api.dialects import ROUTERS, DialectErrors
from embedserve.api.errors import domain_error_response, error_response
from embedserve.api.handling import RequestSlots
from embedserve.api.metrics import Metrics
from embedserve.api.middleware import RequestContextMiddleware
from embedserve.api.openapi import install_openapi
from embedserve.api.playground import router as playground_router
from embedserve.api.rerank import router as rerank_router
from embedserve.api.routes import router
from embedserve.api.validation import invalid_request
from embedserve.engine import Engine
from embedserve.errors import EmbedServeError
from embedserve.settings import ServerSettings, auto

log = logging.getLogger(__name__)
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "unknown"))


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EmbedServeError)
    if exc.code == "internal_error":
        log.error("request failed: %s", exc.message)
    return domain_error_response(exc, _request_id(request))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path}; see /docs for the routes"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(
        exc.status_code, message, type_="invalid_request_error", code=code, headers=exc.headers
    )


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return domain_error_response(invalid_request(exc.errors()), _request_id(request))


def create_app(
    engine: Engine,
    settings: ServerSettings | None = None,
    *,
    manage_engine: bool = True,
    on_fatal: Callable[[BaseException], None] | None = None,
) -> FastAPI:
    """Build the HTTP app. With `manage_engine`, the app's lifespan loads the engine in the
    background (health answers 503 meanwhile) and stops it on shutdown; `on_fatal` is called
    if loading fails."""
    settings = settings or ServerSettings()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not manage_engine:
            yield
            return
        loading = asyncio.create_task(_load(engine, on_fatal))
        try:
            yield
        finally:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            await engine.stop()

    app = FastAPI(
        title="embedserve",
        version=embedserve.__version__,
        description="OpenAI-compatible text embeddings",
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.metrics = Metrics(lambda: engine.runners)
    app.state.slots = RequestSlots(settings.max_concurrent_requests)
    app.router.redirect_slashes = False  # the middleware strips trailing slashes instead
    app.include_router(router)
    for dialect in (*ROUTERS, rerank_router):
        app.include_router(dialect)
    app.state.auth = bool(settings.api_keys)
    if settings.playground:
        app.include_router(playground_router)
    install_openapi(app, auth=bool(settings.api_keys))
    app.add_exception_handler(EmbedServeError, _on_domain_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_middleware(
        RequestContextMiddleware,
        api_keys=settings.api_keys,
        max_payload_bytes=auto.payload_limit(settings),
        metrics=app.state.metrics,
        body_timeout_s=settings.body_timeout_s,
    )
    app.add_middleware(DialectErrors)  # outside the one above: its 401/413/429 are reshaped
    if settings.cors_allow_origins:  # outermost: preflights are answered before auth
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_allow_origins),
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["x-request-id", "retry-after"],
        )
    return app


async def _load(engine: Engine, on_fatal: Callable[[BaseException], None] | None) -> None:
    try:
        await engine.start()
    except asyncio.CancelledError:
        raise
    except EmbedServeError as exc:  # a clear message of ours: no traceback
        log.error("loading the models failed: %s", exc.message)
        if on_fatal is not None:
            on_fatal(exc)
    except Exception as exc:
        log.exception("loading the models failed")
        if on_fatal is not None:
            on_fatal(exc)
