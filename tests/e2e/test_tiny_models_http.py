"""Every tiny architecture served over HTTP by each real backend: one server per backend,
all models in one `--config`, each compared with sentence-transformers."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from tests.conftest import start_server
from tests.models.tiny_models import (
    build_bert,
    build_dense_model,
    build_qwen3,
    build_xlm_roberta_or_mpnet,
)

TEXTS = [
    "over http, every architecture",
    "a longer sentence so that the batch has to pad some inputs, on the left or the right",
    "z",
    "Grüße aus Köln 42",
]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-http")
    return {
        "bert-cls": build_bert(root / "bert-cls", pooling="cls"),
        "xlmr-mean": build_xlm_roberta_or_mpnet(root / "xlmr", architecture="xlm-roberta"),
        "mpnet-mean": build_xlm_roberta_or_mpnet(root / "mpnet", architecture="mpnet"),
        "qwen3-last": build_qwen3(root / "qwen3"),
        "bert-dense": build_dense_model(root / "dense", activation=torch.nn.Tanh(), normalize=True),
        "bert-matryoshka": build_bert(root / "matryoshka", pooling="mean"),
    }


def config_file(models: dict[str, Path], target: Path) -> Path:
    lines = ["models:"]
    for name, path in models.items():
        lines += [f"  - id: {name}", f"    path: {path}"]
        if name == "bert-matryoshka":
            lines.append("    matryoshka: true")
    target.write_text("\n".join(lines) + "\n")
    return target


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_each_architecture_over_http(
    tiny_models: dict[str, Path], onnx_cache_dir: Path, tmp_path: Path, backend: str
) -> None:
    config = config_file(tiny_models, tmp_path / "models.yaml")
    server = start_server(
        ["--config", str(config), "--backend", backend, "--cache-dir", str(onnx_cache_dir)],
        tmp_path / "server.log",
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            cards = {c["id"]: c for c in client.get("/v1/models").json()["data"]}
            assert set(cards) == set(tiny_models)
            assert all(card["backend"] == backend for card in cards.values())
            for name, path in tiny_models.items():
                reference = SentenceTransformer(str(path), device="cpu").encode(TEXTS)
                body: dict[str, object] = {"model": name, "input": TEXTS}
                if name == "bert-matryoshka":
                    body["dimensions"] = 8
                    reference = reference[:, :8]
                response = client.post("/v1/embeddings", json=body)
                assert response.status_code == 200, (name, response.text)
                served = np.array([d["embedding"] for d in response.json()["data"]])
                assert served.shape == reference.shape, name
                cosine = (
                    (served * reference).sum(1)
                    / np.linalg.norm(served, axis=1)
                    / np.linalg.norm(reference, axis=1)
                )
                assert cosine.min() >= 0.99999, (name, cosine)
    finally:
        server.stop()
