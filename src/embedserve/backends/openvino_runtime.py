"""OpenVINO: IR converted from the cached ONNX export, in fp32 or with int8 weights (NNCF)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from embedserve.arrays import FloatArray, IntArray
from embedserve.backends.base import compute_threads
from embedserve.backends.export_cache import open_cached
from embedserve.backends.feeds import model_feeds, pair_separator
from embedserve.backends.onnx_export import cached_onnx_path, ensure_onnx, tools_key
from embedserve.errors import ModelLoadError
from embedserve.models.spec import ModelSpec

log = logging.getLogger(__name__)
T = TypeVar("T")
PRECISIONS = ("fp32", "int8")
OPENVINO_TOOLS = {"openvino": ("openvino",), "nncf": ("nncf",)}


def cached_openvino_path(spec: ModelSpec, cache_dir: Path, precision: str) -> Path:
    """Where the IR (`model.xml`) of `spec` lives: beside its ONNX export, keyed by the OpenVINO
    and NNCF versions too."""
    key = hashlib.sha256(tools_key(OPENVINO_TOOLS).encode()).hexdigest()[:12]
    return cached_onnx_path(spec, cache_dir).parent / f"openvino-{precision}-{key}" / "model.xml"


def open_openvino(
    spec: ModelSpec, cache_dir: Path, precision: str, open_fn: Callable[[Path], T]
) -> T:
    """`open_fn` over the cached IR of `spec`, converting the ONNX export first if needed."""
    if precision not in PRECISIONS:
        raise ModelLoadError(
            f"precision {precision!r} is not available for openvino; use {' or '.join(PRECISIONS)}"
        )
    target = cached_openvino_path(spec, cache_dir, precision)
    onnx_path = cached_onnx_path(spec, cache_dir)

    def convert(destination: Path) -> None:
        import openvino as ov

        log.info("converting %s to OpenVINO IR (%s)", spec.path, precision)
        model = ov.convert_model(str(onnx_path))
        if precision == "int8":
            import nncf

            model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        ov.save_model(model, str(destination))

    return open_cached(target, convert, open_fn, prepare=lambda: ensure_onnx(spec, cache_dir))


def check_ir(path: Path) -> Path:
    """`path`, once OpenVINO can read the IR."""
    import openvino as ov

    ov.Core().read_model(str(path))
    return path


def ensure_openvino(spec: ModelSpec, cache_dir: Path, precision: str) -> Path:
    """The cached IR of `spec`, converted (or rebuilt, if it does not read) first if needed."""
    return open_openvino(spec, cache_dir, precision, check_ir)


class OpenVinoBackend:
    """A compiled OpenVINO model on the CPU, one inference request at a time."""

    name = "openvino"

    def __init__(self, compiled: object, inputs: list[str], pair_sep: int | None = None) -> None:
        self._compiled = compiled
        self._inputs = inputs
        self._pair_sep = pair_sep  # cross-encoders with token types: the pair separator

    @classmethod
    def load(
        cls, spec: ModelSpec, *, device: str, cache_dir: Path, precision: str
    ) -> OpenVinoBackend:
        """Convert (once) and compile the model; a cached IR that fails to compile is rebuilt."""
        if device != "cpu":
            raise ModelLoadError("--backend openvino runs on --device cpu")
        import openvino as ov

        core = ov.Core()
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": compute_threads(),
            "INFERENCE_PRECISION_HINT": "f32",
        }

        def compile_ir(path: Path) -> Any:
            return core.compile_model(str(path), "CPU", config)

        compiled = open_openvino(spec, cache_dir, precision, compile_ir)
        inputs = [port.get_any_name() for port in compiled.inputs]
        return cls(compiled, inputs, pair_separator(spec))

    def forward(self, input_ids: IntArray, attention_mask: IntArray) -> FloatArray:
        """Run the model; token types, when it wants them, are zeros or a pair's."""
        feeds = model_feeds(self._inputs, input_ids, attention_mask, self._pair_sep)
        result = self._compiled(feeds)  # type: ignore[operator]
        return np.asarray(result[0], dtype=np.float32)

    def close(self) -> None:
        """Drop the compiled model."""
        del self._compiled
