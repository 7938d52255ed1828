"""The HTTP layer: OpenAI-compatible routes over an `Engine`."""

from embedserve.api.app import create_app

__all__ = ["create_app"]
