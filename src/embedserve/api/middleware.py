"""One ASGI middleware for what every request shares: request id (in every log line), auth,
body size and read timeout, last-resort 500s, the access log and request metrics. Written as
plain ASGI so that it also wraps errors and 404s."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from embedserve.api.errors import PayloadTooLarge, error_response, internal_error
from embedserve.api.metrics import Metrics
from embedserve.logs import request_id_var

log = logging.getLogger(__name__)
access_log = logging.getLogger("embedserve.access")
REQUEST_ID_HEADER = "x-request-id"
OPEN_PATHS = ("/health", "/metrics", "/v2/health/live", "/v2/health/ready")
PAGES = ("/playground", "/")  # open to GET only: `POST /` is TEI's embed route
CLIENT_CLOSED = 499  # nginx's status for a client that hung up before the answer


class BodyTimeout(Exception):
    """The client did not send its whole body within the body timeout."""


def is_open_path(path: str, method: str = "GET") -> bool:
    """Health probes, metrics and the playground page (GET only) never need an API key (the
    page holds nothing; the requests it makes need the key)."""
    if path in PAGES:
        return method in ("GET", "HEAD")
    return path in OPEN_PATHS or (path.startswith("/v2/models/") and path.endswith("/ready"))


def _request_id(client_value: str | None) -> str:
    """The client's `x-request-id` when it is sane, else a new one."""
    if client_value and len(client_value) <= 200 and client_value.isprintable():
        return client_value
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Wraps every HTTP request of the app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: Sequence[str],
        max_payload_bytes: int,
        metrics: Metrics,
        body_timeout_s: float = 60.0,
    ) -> None:
        self.app = app
        self.api_keys = [key.encode() for key in api_keys]
        self.max_payload_bytes = max_payload_bytes
        self.metrics = metrics
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = _request_id(headers.get(REQUEST_ID_HEADER))
        request_id_var.set(request_id)
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):  # `/v1/embeddings/` is `/v1/embeddings`
            scope["path"] = path.rstrip("/") or "/"
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["arrived"] = asyncio.get_running_loop().time()
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            early = self._refuse(scope, headers)
            if early is not None:
                await early(scope, receive, send_with_id)
            else:
                await self.app(scope, self._guarded(receive), send_with_id)
        except PayloadTooLarge:
            if not response_started:
                await self._too_large()(scope, receive, send_with_id)
        except BodyTimeout:
            if not response_started:
                await _body_timeout(self.body_timeout_s)(scope, receive, send_with_id)
        except ClientDisconnect:
            status = CLIENT_CLOSED
        except Exception:
            log.exception("unhandled error in request %s", request_id)
            if not response_started:
                await internal_error(request_id)(scope, receive, send_with_id)
        finally:
            if state.get("client_gone"):
                status = CLIENT_CLOSED
            seconds = time.perf_counter() - started
            route = scope.get("route")
            self.metrics.observe_request(getattr(route, "path", "unmatched"), status, seconds)
            self._log_access(scope, status, seconds)

    def _refuse(self, scope: Scope, headers: Headers) -> ASGIApp | None:
        """An immediate answer for unauthorised or oversized requests, else None."""
        authenticated = not self.api_keys
        if self.api_keys:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            authenticated = scheme.lower() == "bearer" and self._known_key(token.strip())
        scope["state"]["authenticated"] = authenticated
        if not authenticated and not is_open_path(scope["path"], scope["method"]):
            return error_response(
                401,
                "missing or invalid API key: send `Authorization: Bearer <key>`",
                type_="authentication_error",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_payload_bytes:
            return self._too_large()
        return None

    def _known_key(self, token: str) -> bool:
        """Constant-time comparison against every key (no early exit on a match)."""
        if not token:
            return False
        candidate = token.encode()
        matches = [hmac.compare_digest(candidate, key) for key in self.api_keys]
        return any(matches)

    def _too_large(self) -> ASGIApp:
        return error_response(
            413,
            f"the request body is larger than {self.max_payload_bytes} bytes "
            "(--max-payload-bytes); send fewer or shorter inputs per request",
            type_="invalid_request_error",
            code="payload_too_large",
        )

    def _guarded(self, receive: Receive) -> Receive:
        """Count body bytes as they arrive (chunked bodies have no Content-Length) and give the
        whole body `body_timeout_s` to arrive; later reads (disconnect watch) are not timed."""
        received = 0
        complete = False
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s

        async def guarded_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):  # no task per read, unlike wait_for
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_payload_bytes:
                    raise PayloadTooLarge
                complete = not message.get("more_body", False)
            return message

        return guarded_receive

    def _log_access(self, scope: Scope, status: int, seconds: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope["path"] + (f"?{query}" if query else "")
        access_log.info(
            '%s - "%s %s HTTP/%s" %d %.1fms',
            f"{client[0]}:{client[1]}" if client else "-",
            scope["method"],
            target,
            scope.get("http_version", "1.1"),
            status,
            seconds * 1000,
            extra={"status": status, "duration_ms": round(seconds * 1000, 2)},
        )


def _body_timeout(seconds: float) -> ASGIApp:
    return error_response(
        408,
        f"the request body did not arrive within {seconds:g}s (--body-timeout); send the whole "
        "body promptly",
        type_="invalid_request_error",
        code="request_timeout",
        headers={"connection": "close"},
    )
