"""Inference runtimes behind one small interface (`Backend`), chosen by name."""

from __future__ import annotations

from pathlib import Path

from embedserve.backends.base import Backend
from embedserve.errors import ModelLoadError
from embedserve.models.spec import ModelSpec


def create_backend(kind: str, spec: ModelSpec, *, device: str, cache_dir: Path) -> Backend:
    """Load `spec` on the named runtime (`onnx`, `torch` or `fake`). Blocking; call off the loop."""
    if kind == "onnx":
        from embedserve.backends.onnx_runtime import OnnxBackend

        return OnnxBackend.load(spec, device=device, cache_dir=cache_dir)
    if kind == "torch":
        from embedserve.backends.torch_transformers import TorchBackend

        return TorchBackend.load(spec, device=device)
    if kind == "fake":
        from embedserve.backends.fake import FakeBackend

        return FakeBackend(spec)
    raise ModelLoadError(f"unknown backend {kind!r}; choose onnx, torch or fake")


__all__ = ["Backend", "create_backend"]
