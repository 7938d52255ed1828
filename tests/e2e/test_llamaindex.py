"""LlamaIndex's OpenAI embedding class against a real server process, unchanged."""

from __future__ import annotations

import numpy as np
from llama_index.embeddings.openai import OpenAIEmbedding

from tests.conftest import MODEL_ID, ServerProcess


def test_llamaindex_openai_embedding(real_server: ServerProcess) -> None:
    client = OpenAIEmbedding(
        model_name=MODEL_ID, api_base=real_server.base_url + "/v1", api_key="unused"
    )
    query = np.array(client.get_query_embedding("where is the capital of France?"))
    docs = np.array(
        client.get_text_embedding_batch(["Paris is the capital of France.", "Bananas are yellow."])
    )
    assert query.shape == (384,) and docs.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    scores = docs @ query
    assert scores[0] > scores[1] + 0.2
