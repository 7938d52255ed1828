"""Connection guards below the ASGI app: header read timeout, head size limit, a cap on open
connections (answered with the error envelope, not hung) and a write-stall timeout."""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from embedserve.config import ServerSettings


def guarded_protocol(settings: ServerSettings) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with this server's connection limits (TODO: guards)."""

    class GuardedProtocol(HttpToolsProtocol):
        """One HTTP connection, with the guards of `settings`."""

    return GuardedProtocol
