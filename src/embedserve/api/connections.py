"""Connection guards below the ASGI app: header read timeout, head size limit, a cap on open
connections (answered with the error envelope, not hung) and a write-stall timeout."""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from embedserve.api.errors import error_response
from embedserve.settings import ServerSettings

# On shutdown, how long a connection that has not sent its first request yet may still send it.
SHUTDOWN_GRACE_S = 1.0
log = logging.getLogger(__name__)
# After an error answer, what the client still sends is read and dropped for this long (or until
# it closes), so that closing does not reset the connection before the client reads the answer.
LINGER_S = 2.0
# The warning about refused connections is written at most this often.
REFUSAL_LOG_INTERVAL_S = 10.0


def error_bytes(
    status: int,
    message: str,
    *,
    type_: str,
    code: str,
    headers: Mapping[str, str] | None = None,
    default_headers: list[tuple[bytes, bytes]] | None = None,
) -> bytes:
    """A complete `connection: close` HTTP/1.1 response carrying the error envelope."""
    response = error_response(
        status, message, type_=type_, code=code, headers={**(headers or {}), "connection": "close"}
    )
    phrase = http.HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {phrase}".encode("ascii")]
    lines += [
        name + b": " + value for name, value in [*(default_headers or []), *response.raw_headers]
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + bytes(response.body)


class GuardedProtocol(HttpToolsProtocol):
    """One HTTP connection, with the guards of `settings` (set by `guarded_protocol`)."""

    settings: ClassVar[ServerSettings] = ServerSettings()
    _refused: ClassVar[int] = 0  # connections refused since the last warning
    _refusal_logged_at: ClassVar[float] = -REFUSAL_LOG_INTERVAL_S

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True  # the next bytes belong to a request head
        self._head_bytes = 0  # bytes of the current head received so far
        self._answered = False  # an error answer was written: what arrives is dropped
        self._served = 0  # requests whose head arrived on this connection
        self._closing = False  # the server is shutting down: no keep-alive after this request
        self._header_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection; past the cap, answer 429 at once instead of serving it."""
        super().connection_made(transport)
        if len(self.connections) > self.settings.max_connections:
            self.connections.discard(self)
            self._log_refusal()
            self._answer(
                429,
                "the server has too many open connections; retry shortly",
                type_="rate_limit_error",
                code="server_overloaded",
                headers={"Retry-After": "1"},
            )
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop every timer of this connection, then let uvicorn end the request."""
        for timer in (self._header_timer, self._write_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._write_timer = self._linger_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, counting head bytes: past `max_header_bytes`, answer 431."""
        limit = self.settings.max_header_bytes
        while data and not self._answered and not self.transport.is_closing():
            if not self._in_head:
                super().data_received(data)
                return
            room = limit - self._head_bytes
            if room <= 0:
                self._answer(
                    431,
                    f"the request head is larger than the server's limit of {limit} bytes",
                    type_="invalid_request_error",
                    code="headers_too_large",
                )
                log.info("%sanswered 431: request head over %d bytes", self._peer(), limit)
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self.parser.should_upgrade():
                return  # uvicorn drops the rest of the read after an upgrade head too

    def on_headers_complete(self) -> None:
        """The head is in: stop the header timer."""
        self._in_head = False
        self._head_bytes = 0
        self._served += 1
        self._cancel_header_timer()
        super().on_headers_complete()
        if self._closing and self.cycle is not None:
            self.cycle.keep_alive = False

    def shutdown(self) -> None:
        """The listener is closing. An idle keep-alive connection is closed now, as uvicorn does;
        but one just accepted whose first request has not arrived yet, or one in the middle of
        a head, gets `SHUTDOWN_GRACE_S` to send it: it is then served, with `connection: close`,
        instead of being reset."""
        between = self.cycle is None or self.cycle.response_complete
        fresh = self._served == 0 or self._head_bytes > 0
        if between and fresh and not self.transport.is_closing():
            self._closing = True
            self._cancel_header_timer()
            self._header_timer = self.loop.call_later(SHUTDOWN_GRACE_S, self._on_header_timeout)
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._closing = True
        super().shutdown()

    def on_message_complete(self) -> None:
        """The request is in: what follows is the next request's head."""
        super().on_message_complete()
        self._in_head = True

    def on_response_complete(self) -> None:
        """Arm the header timer for the next request, unless one is already waiting."""
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle.response_complete:
            self._arm_header_timer()

    def pause_writing(self) -> None:
        """The client stopped reading: it has `write_timeout_s` to start again."""
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(
                self.settings.write_timeout_s, self._on_write_timeout
            )

    def resume_writing(self) -> None:
        """The client reads again: stop the write timer."""
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(
            self.settings.header_timeout_s, self._on_header_timeout
        )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _on_header_timeout(self) -> None:
        """Idle: close quietly. Part of a head sent (slowloris): answer 408 and close."""
        self._header_timer = None
        if self.transport.is_closing() or self._answered:
            return
        if self._head_bytes == 0:
            self.transport.close()
            return
        timeout = self.settings.header_timeout_s
        log.info("%sanswered 408: request head incomplete after %gs", self._peer(), timeout)
        self._answer(
            408,
            f"the request head was not complete within {timeout:g}s",
            type_="invalid_request_error",
            code="header_timeout",
        )

    def _on_write_timeout(self) -> None:
        """The client read nothing for `write_timeout_s`: reset the connection."""
        self._write_timer = None
        log.info(
            "%sclosing the connection: the client read none of its response for %gs",
            self._peer(),
            self.settings.write_timeout_s,
        )
        sock = self.transport.get_extra_info("socket")
        with contextlib.suppress(AttributeError, OSError):
            # Linger 0: close with a reset, so the kernel drops the unsent bytes at once.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def _answer(
        self,
        status: int,
        message: str,
        *,
        type_: str,
        code: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Write an error answer and close: send FIN, drop what still arrives, then close."""
        self._answered = True
        self._cancel_header_timer()
        self._unset_keepalive_if_required()
        if self.cycle is not None and not self.cycle.response_complete:
            # A response is being written: no answer can go in between; close after it.
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        self.transport.write(
            error_bytes(
                status,
                message,
                type_=type_,
                code=code,
                headers=headers,
                default_headers=self.server_state.default_headers,
            )
        )
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.flow.resume_reading()
        self._linger_timer = self.loop.call_later(LINGER_S, self.transport.close)

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]} - " if self.client else ""

    def _log_refusal(self) -> None:
        cls = type(self)
        cls._refused += 1
        now = time.monotonic()
        if now - cls._refusal_logged_at >= REFUSAL_LOG_INTERVAL_S:
            log.warning(
                "answered 429 to %d connection(s): %d open connections is the limit "
                "(--max-connections)",
                cls._refused,
                self.settings.max_connections,
            )
            cls._refused = 0
            cls._refusal_logged_at = now


def guarded_protocol(settings: ServerSettings) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the connection limits of `settings`."""
    return type("GuardedProtocol", (GuardedProtocol,), {"settings": settings})
