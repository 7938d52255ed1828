"""OpenVINO: IR converted from the cached ONNX export, in fp32 or with int8 weights (NNCF)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from embedserve.backends.base import FloatArray, IntArray
from embedserve.backends.onnx_export import build_cached, ensure_onnx
from embedserve.errors import ModelLoadError
from embedserve.models.spec import ModelSpec

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "int8")


def ensure_openvino(spec: ModelSpec, cache_dir: Path, precision: str) -> Path:
    """The cached IR (`model.xml`) next to the ONNX export of `spec`, converting it if needed."""
    if precision not in PRECISIONS:
        raise ModelLoadError(
            f"precision {precision!r} is not available for openvino; use {' or '.join(PRECISIONS)}"
        )
    onnx_path = ensure_onnx(spec, cache_dir)

    def convert(destination: Path) -> None:
        import openvino as ov

        log.info("converting %s to OpenVINO IR (%s)", spec.path, precision)
        model = ov.convert_model(str(onnx_path))
        if precision == "int8":
            import nncf

            model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        ov.save_model(model, str(destination))

    return build_cached(onnx_path.parent / f"openvino-{precision}" / "model.xml", convert)


class OpenVinoBackend:
    """A compiled OpenVINO model on the CPU, one inference request at a time."""

    name = "openvino"

    def __init__(self, compiled: object, inputs: list[str]) -> None:
        self._compiled = compiled
        self._inputs = inputs

    @classmethod
    def load(
        cls, spec: ModelSpec, *, device: str, cache_dir: Path, precision: str
    ) -> OpenVinoBackend:
        """Convert (once) and compile the model."""
        if device != "cpu":
            raise ModelLoadError("--backend openvino runs on --device cpu")
        import openvino as ov

        path = ensure_openvino(spec, cache_dir, precision)
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": os.cpu_count() or 1,
            "INFERENCE_PRECISION_HINT": "f32",
        }
        compiled = ov.Core().compile_model(str(path), "CPU", config)
        inputs = [port.get_any_name() for port in compiled.inputs]
        return cls(compiled, inputs)

    def forward(self, input_ids: IntArray, attention_mask: IntArray) -> FloatArray:
        """Run the model; token types are zeros when the graph wants them."""
        available = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": np.zeros_like(input_ids),
        }
        result = self._compiled({name: available[name] for name in self._inputs})  # type: ignore[operator]
        return np.asarray(result[0], dtype=np.float32)

    def close(self) -> None:
        """Drop the compiled model."""
        del self._compiled
