"""embedserve: an OpenAI-compatible text-embeddings server and engine."""

__version__ = "0.1.0"
