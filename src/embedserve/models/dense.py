"""sentence-transformers `Dense` modules: a linear projection (and activation) after pooling."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from embedserve.arrays import FloatArray
from embedserve.errors import ModelLoadError

_ACTIVATIONS: dict[str, Callable[[FloatArray], FloatArray]] = {
    "Identity": lambda x: x,
    "Tanh": np.tanh,
    "ReLU": lambda x: np.maximum(x, np.float32(0)),
    "Sigmoid": lambda x: (1 / (1 + np.exp(-x))).astype(np.float32),
}


@dataclass(frozen=True)
class DenseLayer:
    """`activation(x @ weight.T + bias)`, in float32 numpy."""

    weight: FloatArray
    bias: FloatArray | None
    activation: str

    def __call__(self, vectors: FloatArray) -> FloatArray:
        out = vectors @ self.weight.T
        if self.bias is not None:
            out = out + self.bias
        return np.ascontiguousarray(_ACTIVATIONS[self.activation](out), dtype=np.float32)


def _weights(directory: Path) -> dict[str, npt.NDArray[np.float32]]:
    if (directory / "model.safetensors").is_file():
        from safetensors.numpy import load_file

        return {
            k: v.astype(np.float32) for k, v in load_file(directory / "model.safetensors").items()
        }
    if (directory / "pytorch_model.bin").is_file():
        import torch

        state = torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
        return {k: v.float().numpy() for k, v in state.items()}
    raise ModelLoadError(f"{directory} has no model.safetensors or pytorch_model.bin")


def load_dense(directory: Path) -> DenseLayer:
    """Read one Dense module folder (config.json + weights)."""
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    activation = str(config.get("activation_function", "Identity")).rsplit(".", 1)[-1]
    if activation not in _ACTIVATIONS:
        raise ModelLoadError(
            f"{directory}: activation {activation!r} is not supported "
            f"(supported: {', '.join(_ACTIVATIONS)})"
        )
    weights = _weights(directory)
    weight = weights.get("linear.weight")
    if weight is None or weight.shape != (config["out_features"], config["in_features"]):
        raise ModelLoadError(f"{directory}: linear.weight is missing or has the wrong shape")
    return DenseLayer(weight, weights.get("linear.bias"), activation)


def projection(dense_dirs: Sequence[Path]) -> Callable[[FloatArray], FloatArray] | None:
    """All Dense modules of a model as one function, or None when it has none."""
    layers = [load_dense(directory) for directory in dense_dirs]
    if not layers:
        return None

    def project(vectors: FloatArray) -> FloatArray:
        for layer in layers:
            vectors = layer(vectors)
        return vectors

    return project
