"""Other servers' dialects, routed to the same engine: TEI, Ollama and Cohere."""

from embedserve.api.dialects import cohere, ollama, tei
from embedserve.api.dialects.errors import DialectErrors

ROUTERS = (tei.router, ollama.router, cohere.router)

__all__ = ["ROUTERS", "DialectErrors"]
