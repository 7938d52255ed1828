"""One ASGI middleware for what every request shares: request id, auth, body limit, last-resort
500s and request metrics. Written as plain ASGI so that it also wraps errors and 404s."""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from embedserve.api.errors import PayloadTooLarge, error_response, internal_error
from embedserve.api.metrics import Metrics

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "x-request-id"
OPEN_PATHS = ("/health", "/metrics", "/v2/health/live", "/v2/health/ready")


def is_open_path(path: str) -> bool:
    """Health probes and metrics never need an API key."""
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
    ) -> None:
        self.app = app
        self.api_keys = [key.encode() for key in api_keys]
        self.max_payload_bytes = max_payload_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = _request_id(headers.get(REQUEST_ID_HEADER))
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):  # `/v1/embeddings/` is `/v1/embeddings`
            scope["path"] = path.rstrip("/") or "/"
        scope.setdefault("state", {})["request_id"] = request_id
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
                await self.app(scope, self._limited(receive), send_with_id)
        except PayloadTooLarge:
            if not response_started:
                await self._too_large()(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in request %s", request_id)
            if not response_started:
                await internal_error(request_id)(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.observe_request(path, status, time.perf_counter() - started)

    def _refuse(self, scope: Scope, headers: Headers) -> ASGIApp | None:
        """An immediate answer for unauthorised or oversized requests, else None."""
        if self.api_keys and not is_open_path(scope["path"]):
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not self._known_key(token.strip().encode()):
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

    def _known_key(self, token: bytes) -> bool:
        matches = [hmac.compare_digest(token, key) for key in self.api_keys]
        return any(matches)

    def _too_large(self) -> ASGIApp:
        return error_response(
            413,
            f"the request body is larger than {self.max_payload_bytes} bytes; "
            "send fewer or shorter inputs per request",
            type_="invalid_request_error",
            code="payload_too_large",
        )

    def _limited(self, receive: Receive) -> Receive:
        """Count body bytes as they arrive (chunked bodies have no Content-Length)."""
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_payload_bytes:
                    raise PayloadTooLarge
            return message

        return limited_receive
