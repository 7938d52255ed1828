"""Inference runtimes behind one small interface (`Backend`), chosen by name."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from embedserve.backends.base import Backend
from embedserve.errors import ModelLoadError
from embedserve.models.spec import ModelSpec

# Precisions each runtime offers, as measured on all-MiniLM-L6-v2 (see README, "Exporting").
OFFERED_PRECISIONS = {"onnx": ("fp32", "fp16"), "openvino": ("fp32", "int8")}


def create_backend(
    kind: str,
    spec: ModelSpec,
    *,
    device: str,
    cache_dir: Path,
    precision: str = "fp32",
    fake_faults: str = "",
) -> Backend:
    """Load `spec` on the named runtime (`onnx`, `torch`, `openvino` or `fake`). Blocking; call
    off the loop. Besides fp32, onnx offers fp16 and openvino int8 (each measured first)."""
    if precision not in OFFERED_PRECISIONS.get(kind, ("fp32",)):
        offered = "; ".join(f"{k}: {', '.join(v)}" for k, v in OFFERED_PRECISIONS.items())
        raise ModelLoadError(
            f"precision {precision!r} is not offered for --backend {kind} (offered: {offered})"
        )
    if kind == "openvino":
        from embedserve.backends.openvino_runtime import OpenVinoBackend

        return OpenVinoBackend.load(spec, device=device, cache_dir=cache_dir, precision=precision)
    if kind == "onnx":
        from embedserve.backends.onnx_runtime import OnnxBackend

        return OnnxBackend.load(spec, device=device, cache_dir=cache_dir, precision=precision)
    if kind == "torch":
        if find_spec("torch") is None or find_spec("transformers") is None:
            raise ModelLoadError(
                "--backend torch needs PyTorch and transformers: pip install 'embedserve[export]'"
            )
        from embedserve.backends.torch_transformers import TorchBackend

        return TorchBackend.load(spec, device=device)
    if kind == "fake":
        from embedserve.backends.fake import FakeBackend
        from embedserve.faults import parse_faults

        return FakeBackend(spec, **parse_faults(fake_faults))  # type: ignore[arg-type]
    raise ModelLoadError(f"unknown backend {kind!r}; choose onnx, torch, openvino or fake")


__all__ = ["Backend", "create_backend"]
