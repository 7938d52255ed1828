"""Model specs: what a model directory declares, and under which names it is served."""

from embedserve.models.bundled import BUNDLED_MODEL_ALIASES, BUNDLED_MODEL_ID, bundled_model_path
from embedserve.models.spec import ModelSpec, Pooling, load_model_spec

__all__ = [
    "BUNDLED_MODEL_ALIASES",
    "BUNDLED_MODEL_ID",
    "ModelSpec",
    "Pooling",
    "bundled_model_path",
    "load_model_spec",
]
