"""PyTorch via `transformers`: the reference implementation and the CUDA path."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import AutoModel, AutoModelForSequenceClassification

from embedserve.arrays import FloatArray, IntArray
from embedserve.backends.base import compute_threads
from embedserve.backends.feeds import model_feeds, pair_separator
from embedserve.errors import ModelLoadError
from embedserve.models.spec import ModelSpec


class TorchBackend:
    """`AutoModel` (or, for a cross-encoder, `AutoModelForSequenceClassification`: logits
    instead of token embeddings) in eval mode under `torch.inference_mode`."""

    name = "torch"

    def __init__(
        self, model: Any, device: torch.device, uses_token_types: bool, pair_sep: int | None = None
    ) -> None:
        self._model = model
        self._device = device
        self._inputs = ["input_ids", "attention_mask"]
        if uses_token_types:
            self._inputs.append("token_type_ids")
        self._pair_sep = pair_sep  # cross-encoders with token types: the pair separator

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str) -> TorchBackend:
        """Load the weights in float32 on `device`."""
        if device == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError("--device cuda was asked for but PyTorch sees no CUDA device")
        if device == "cpu":
            torch.set_num_threads(compute_threads())
        loader = AutoModelForSequenceClassification if spec.score_head else AutoModel
        model = loader.from_pretrained(
            str(spec.path), dtype=torch.float32, trust_remote_code=spec.trust_remote_code
        )
        model = model.to(device).eval()
        type_vocab = int(getattr(model.config, "type_vocab_size", 0) or 0)
        return cls(model, torch.device(device), type_vocab > 0, pair_separator(spec))

    def forward(self, input_ids: IntArray, attention_mask: IntArray) -> FloatArray:
        """Last hidden state (a cross-encoder's logits) of the padded batch, on the host."""
        feeds = model_feeds(self._inputs, input_ids, attention_mask, self._pair_sep)
        kwargs = {name: torch.from_numpy(array).to(self._device) for name, array in feeds.items()}
        with torch.inference_mode():
            output = self._model(**kwargs)
        hidden = output.logits if hasattr(output, "logits") else output.last_hidden_state
        return np.asarray(hidden.float().cpu().numpy(), dtype=np.float32)

    def close(self) -> None:
        """Free the weights (and the CUDA cache)."""
        del self._model
        if self._device.type == "cuda":
            torch.cuda.empty_cache()
