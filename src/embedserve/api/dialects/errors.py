"""Errors in each dialect's own shape. Every error is raised and rendered once, as an OpenAI
envelope; on a dialect's route this middleware rewrites it into that dialect's body (TEI:
`{"error", "error_type"}` with TEI's statuses; Ollama and OVMS' rerank: `{"error"}`; Cohere:
`{"message"}`), so
errors from the middleware (401, 413, 429) are shaped too."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TEI_PATHS = frozenset({"/", "/embed", "/info"})
COHERE_PATHS = frozenset({"/v2/embed", "/v2/rerank"})
OLLAMA_PREFIX = "/api/"
OVMS_PATHS = frozenset({"/v3/rerank"})  # its /v3/embeddings keeps OpenAI's envelope (API.md)
# TEI: our status -> (its status, its error_type); an empty input is its own type.
TEI_ERRORS = {
    400: (422, "Validation"),
    401: (401, "Validation"),
    404: (404, "Validation"),
    405: (405, "Validation"),
    408: (408, "Validation"),
    413: (413, "Validation"),
    429: (429, "Overloaded"),
    503: (503, "Unhealthy"),
}


def dialect_of(path: str) -> str | None:
    """Which dialect owns `path` (None: the OpenAI envelope stays)."""
    path = path.rstrip("/") or "/"
    if path in TEI_PATHS:
        return "tei"
    if path in COHERE_PATHS:
        return "cohere"
    if path.startswith(OLLAMA_PREFIX):
        return "ollama"
    if path in OVMS_PATHS:
        return "ovms"
    return None


def reshaped(dialect: str, status: int, envelope: dict[str, Any]) -> tuple[int, Any]:
    """The dialect's status and body for an OpenAI error envelope."""
    error = envelope.get("error") or {}
    message = str(error.get("message", "error"))
    if dialect == "tei":
        if error.get("code") == "empty_input":
            return 400, {"error": message, "error_type": "Empty"}
        tei_status, kind = TEI_ERRORS.get(status, (424, "Backend"))
        return tei_status, {"error": message, "error_type": kind}
    if dialect == "cohere":
        return status, {"message": message}
    return status, {"error": message}


class DialectErrors:
    """ASGI middleware: error responses on dialect routes, reshaped (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        dialect = dialect_of(scope["path"]) if scope["type"] == "http" else None
        if dialect is None:
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def reshaping_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held.append(message)
                return
            if not held or message["type"] != "http.response.body":
                await send(message)
                return
            held.append(message)
            if message.get("more_body", False):
                return
            await send_reshaped(dialect, held, send)

        await self.app(scope, receive, reshaping_send)


async def send_reshaped(dialect: str, held: list[Message], send: Send) -> None:
    """Send the held error (start + body parts) in the dialect's shape."""
    start, body = held[0], b"".join(part.get("body", b"") for part in held[1:])
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        envelope = None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("error"), dict):
        await send(start)
        await send({"type": "http.response.body", "body": body})
        return
    status, shaped = reshaped(dialect, start["status"], envelope)
    content = orjson.dumps(shaped)
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
