"""embedserve: an OpenAI-compatible text-embeddings server, and the engine as a library.

>>> import embedserve
>>> embedserve.Embedder().encode(["a", "b"]).shape
(2, 384)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["EmbedResult", "Embedder", "Engine", "ModelSettings", "__version__"]

if TYPE_CHECKING:
    from embedserve.engine import EmbedResult, Engine
    from embedserve.library import Embedder
    from embedserve.settings import ModelSettings

_LAZY = {
    "Embedder": "embedserve.library",
    "Engine": "embedserve.engine",
    "EmbedResult": "embedserve.engine",
    "ModelSettings": "embedserve.settings",
}


def __getattr__(name: str) -> Any:
    """Import the library API on first use, so `import embedserve` (and the CLI) stays light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embedserve' has no attribute {name!r}")
