"""ONNX Runtime: the default CPU backend, running the cached export of the model."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from embedserve.arrays import FloatArray, IntArray
from embedserve.backends.base import compute_threads
from embedserve.backends.feeds import model_feeds, pair_separator
from embedserve.backends.onnx_export import open_onnx, open_onnx_fp16
from embedserve.errors import ModelLoadError
from embedserve.models.spec import ModelSpec

log = logging.getLogger(__name__)


def session_options() -> ort.SessionOptions:
    """Full graph optimisation, one intra-op thread per core, sequential execution, and no
    busy-waiting between batches (the event loop and tokenizer share these cores)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = compute_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def shipped_onnx(spec: ModelSpec) -> Path | None:
    """An ONNX graph the model directory brings (`model.onnx`, or `onnx/model.onnx` as
    sentence-transformers and Optimum save it): served as it is, with no export and no PyTorch.
    Its first output must be the token states (an embedding model) or the logits (a reranker)."""
    for candidate in (spec.path / "model.onnx", spec.path / "onnx" / "model.onnx"):
        if candidate.is_file():
            return candidate
    return None


class OnnxBackend:
    """An `onnxruntime.InferenceSession` over the exported graph."""

    name = "onnx"

    def __init__(self, session: ort.InferenceSession, pair_sep: int | None = None) -> None:
        self._session = session
        self._inputs = [item.name for item in session.get_inputs()]
        self._pair_sep = pair_sep  # cross-encoders with token types: the pair separator

    @classmethod
    def load(
        cls, spec: ModelSpec, *, device: str, cache_dir: Path, precision: str = "fp32"
    ) -> OnnxBackend:
        """Export (once) and open the model on `device`, in fp32 or fp16; a cached graph that does
        not load is rebuilt once."""
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ModelLoadError(
                    "--device cuda with --backend onnx needs onnxruntime-gpu; "
                    "install it or use --backend torch"
                )
            providers.insert(0, "CUDAExecutionProvider")

        def open_session(path: Path) -> ort.InferenceSession:
            return ort.InferenceSession(
                str(path), sess_options=session_options(), providers=providers
            )

        shipped = shipped_onnx(spec) if precision == "fp32" else None
        if shipped is not None:
            session = open_session(shipped)
            rank = len(session.get_outputs()[0].shape)
            if rank == (2 if spec.score_head is not None else 3):
                log.info("serving the model's own ONNX graph %s (no export)", shipped)
                return cls(session, pair_separator(spec))
            log.warning(
                "%s's first output has rank %d, not what is served; exporting", shipped, rank
            )
        opener = open_onnx_fp16 if precision == "fp16" else open_onnx
        return cls(opener(spec, cache_dir, open_session), pair_separator(spec))

    def forward(self, input_ids: IntArray, attention_mask: IntArray) -> FloatArray:
        """Run the graph; token types, when it wants them, are zeros or a pair's."""
        feeds = model_feeds(self._inputs, input_ids, attention_mask, self._pair_sep)
        output = self._session.run(None, feeds)[0]
        return np.asarray(output, dtype=np.float32)

    def close(self) -> None:
        """Drop the session."""
        del self._session
