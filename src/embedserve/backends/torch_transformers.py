"""PyTorch via `transformers`: the reference implementation and the CUDA path."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from transformers import AutoModel

from embedserve.arrays import FloatArray, IntArray
from embedserve.errors import ModelLoadError
from embedserve.models.spec import ModelSpec


class TorchBackend:
    """`AutoModel` in eval mode under `torch.inference_mode`."""

    name = "torch"

    def __init__(self, model: Any, device: torch.device, uses_token_types: bool) -> None:
        self._model = model
        self._device = device
        self._uses_token_types = uses_token_types

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str) -> TorchBackend:
        """Load the weights in float32 on `device`."""
        if device == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError("--device cuda was asked for but PyTorch sees no CUDA device")
        if device == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)
        model = AutoModel.from_pretrained(
            str(spec.path), dtype=torch.float32, trust_remote_code=spec.trust_remote_code
        )
        model = model.to(device).eval()
        uses_token_types = bool(getattr(model.config, "type_vocab_size", 0))
        return cls(model, torch.device(device), uses_token_types)

    def forward(self, input_ids: IntArray, attention_mask: IntArray) -> FloatArray:
        """Last hidden state of the padded batch, copied back to host memory."""
        ids = torch.from_numpy(input_ids).to(self._device)
        mask = torch.from_numpy(attention_mask).to(self._device)
        kwargs: dict[str, torch.Tensor] = {"input_ids": ids, "attention_mask": mask}
        if self._uses_token_types:
            kwargs["token_type_ids"] = torch.zeros_like(ids)
        with torch.inference_mode():
            hidden = self._model(**kwargs).last_hidden_state
        return np.asarray(hidden.float().cpu().numpy(), dtype=np.float32)

    def close(self) -> None:
        """Free the weights (and the CUDA cache)."""
        del self._model
        if self._device.type == "cuda":
            torch.cuda.empty_cache()
