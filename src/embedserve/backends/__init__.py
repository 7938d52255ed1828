"""Inference runtimes behind one small interface (`Backend`), chosen by name."""

from __future__ import annotations

from pathlib import Path

from embedserve.backends.base import Backend
from embedserve.errors import ModelLoadError
from embedserve.models.spec import ModelSpec


def create_backend(
    kind: str, spec: ModelSpec, *, device: str, cache_dir: Path, precision: str = "fp32"
) -> Backend:
    """Load `spec` on the named runtime (`onnx`, `torch`, `openvino` or `fake`). Blocking; call
    off the loop. `precision` other than fp32 exists only for openvino (int8 weights)."""
    if precision != "fp32" and kind != "openvino":
        raise ModelLoadError(
            f"precision {precision!r} is available with --backend openvino only; "
            "the other backends run fp32"
        )
    if kind == "openvino":
        from embedserve.backends.openvino_runtime import OpenVinoBackend

        return OpenVinoBackend.load(spec, device=device, cache_dir=cache_dir, precision=precision)
    if kind == "onnx":
        from embedserve.backends.onnx_runtime import OnnxBackend

        return OnnxBackend.load(spec, device=device, cache_dir=cache_dir)
    if kind == "torch":
        from embedserve.backends.torch_transformers import TorchBackend

        return TorchBackend.load(spec, device=device)
    if kind == "fake":
        from embedserve.backends.fake import FakeBackend

        return FakeBackend(spec)
    raise ModelLoadError(f"unknown backend {kind!r}; choose onnx, torch, openvino or fake")


__all__ = ["Backend", "create_backend"]
