"""Models that ship their own code run only with --trust-remote-code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertModel

from embedserve.errors import ModelLoadError
from embedserve.models import load_model_spec
from embedserve.settings import ModelSettings
from embedserve.testing import embed_in_process
from embedserve.tokenization import TextTokenizer
from tests.models.tiny_models import build_bert

CUSTOM_CODE = """
from transformers import BertConfig, BertModel


class TinyCustomConfig(BertConfig):
    model_type = "tiny-custom-bert"


class TinyCustomModel(BertModel):
    config_class = TinyCustomConfig
"""


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("custom") / "tiny-custom"
    build_bert(path, pooling="mean", seed=3)
    (path / "modeling_tiny.py").write_text(CUSTOM_CODE)
    data = json.loads((path / "config.json").read_text())
    data["model_type"] = "tiny-custom-bert"
    data["auto_map"] = {
        "AutoConfig": "modeling_tiny.TinyCustomConfig",
        "AutoModel": "modeling_tiny.TinyCustomModel",
    }
    (path / "config.json").write_text(json.dumps(data))
    return path


def test_refused_without_the_flag(custom_model: Path) -> None:
    with pytest.raises(ModelLoadError, match="--trust-remote-code"):
        load_model_spec(custom_model)
    result = subprocess.run(
        [sys.executable, "-m", "embedserve", "serve", "--model", str(custom_model)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "--trust-remote-code" in result.stderr and "auto_map" in result.stderr


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_runs_with_the_flag(custom_model: Path, onnx_cache_dir: Path, backend: str) -> None:
    texts = ["custom code, allowed by the operator", "another text entirely", "x"]

    settings = ModelSettings(path=custom_model, backend=backend, trust_remote_code=True)
    served = embed_in_process(settings, onnx_cache_dir, texts=texts)[1].vectors
    model = BertModel.from_pretrained(custom_model).eval()  # the same weights, stock class
    tokenizer = TextTokenizer(load_model_spec(custom_model, trust_remote_code=True))
    for row, ids in zip(served, tokenizer.encode(texts), strict=True):
        with torch.inference_mode():
            hidden = model(torch.tensor([ids])).last_hidden_state[0].numpy()
        expected = hidden.mean(axis=0)
        expected /= np.linalg.norm(expected)
        assert float(row @ expected) >= 0.99999
