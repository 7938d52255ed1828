"""Several models in one server: repeatable --model, the --config models file, routing by id."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from embedserve.models import bundled_model_path
from embedserve.settings import ModelSettings, settings_from_sources
from embedserve.settings.models_file import load_models_file
from tests.conftest import start_server

EMBED = "/v1/embeddings"


def build(**given: object) -> object:
    return settings_from_sources(given, {})


def test_json_models_file(tmp_path: Path) -> None:
    config = tmp_path / "models.json"
    config.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "id": "mini",
                        "aliases": ["m1", "m2"],
                        "pooling": "cls",
                        "max_batch_tokens": 512,
                    },
                    {"path": "weights/e5", "normalize": False, "max_length": 128},
                ]
            }
        )
    )
    defaults = ModelSettings(backend="torch", device="cpu")
    first, second = load_models_file(config, defaults)
    assert first.served_names == ("mini", "m1", "m2") and first.path is None
    assert first.pooling == "cls" and first.backend == "torch"
    assert first.limits.max_batch_tokens == 512
    assert first.limits.max_client_batch_size == defaults.limits.max_client_batch_size
    assert second.path == tmp_path / "weights" / "e5"  # relative to the file
    assert second.served_names == ("e5",)
    assert (second.normalize, second.max_length) == (False, 128)


def test_yaml_models_file(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  - id: a\n    matryoshka: true\n  - id: b\n    backend: fake\n")
    a, b = load_models_file(config, ModelSettings())
    assert (a.served_names, a.matryoshka) == (("a",), True)
    assert (b.served_names, b.backend) == (("b",), "fake")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"models": [{"id": "a", "colour": "red"}]}', "unknown keys"),
        ('{"models": []}', "non-empty `models`"),
        ('{"model": {}}', "non-empty `models`"),
        ('{"models": [{"id": "a", "aliases": "b"}]}', "aliases"),
        ('{"models": [{"id": "a", "max_batch_tokens": 0}]}', "--max-batch-tokens"),
        ('{"models": [{"id": "a", "device": "gpu"}]}', r"models\[0\]\.device.*'cpu' or 'cuda'"),
        ('{"models": [{"id": "a", "matryoshka": "false"}]}', r"models\[0\]\.matryoshka.*bool"),
        ('{"models": [{"id": "a", "max_batch_tokens": "4096"}]}', r"max_batch_tokens.*integer"),
        ('{"models": [{"id": "a", "pooling": "avg"}]}', r"models\[0\]\.pooling"),
        ('{"models": [{"id": "a"}, {"id": "b", "precision": "int4"}]}', r"models\[1\]\.precision"),
        ('{"models": [{"id": 7}]}', r"models\[0\]\.id must be a string"),
        ('{"models": [5]}', "must be an object"),
        ("{not json", "cannot read"),
    ],
)
def test_bad_models_files(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "models.json"
    config.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_models_file(config, ModelSettings())


def test_repeated_model_flags(tmp_path: Path) -> None:
    settings = settings_from_sources({"model": [str(tmp_path / "a"), str(tmp_path / "b")]}, {})
    assert [m.path for m in settings.models] == [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(ValueError, match="--served-model-name names one model"):
        build(model=["a", "b"], served_model_name=["x"])
    with pytest.raises(ValueError, match="not both"):
        build(model=["a"], models_file=str(tmp_path / "c.json"))
    (bundled,) = settings_from_sources({}, {}).models
    assert bundled.path is None


def test_two_models_in_one_server(tmp_path: Path, onnx_cache_dir: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n"
        "  - id: minilm\n"
        "    aliases: [minilm-mean]\n"
        "  - id: minilm-cls\n"
        "    pooling: cls\n"
    )
    server = start_server(
        ["--config", str(config), "--cache-dir", str(onnx_cache_dir)], tmp_path / "server.log"
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            text = "Two models, one server."
            mean = client.post(EMBED, json={"model": "minilm", "input": text}).json()
            alias = client.post(EMBED, json={"model": "minilm-mean", "input": text}).json()
            cls = client.post(EMBED, json={"model": "minilm-cls", "input": text}).json()
            assert (mean["model"], alias["model"], cls["model"]) == (
                "minilm",
                "minilm-mean",
                "minilm-cls",
            )
            a, b = np.array(mean["data"][0]["embedding"]), np.array(cls["data"][0]["embedding"])
            assert alias["data"] == mean["data"]
            assert float(a @ b) < 0.99  # different pooling, clearly different vectors
            wrong = client.post(EMBED, json={"model": "minilm-max", "input": text})
            assert wrong.status_code == 404
            assert wrong.json()["error"]["code"] == "model_not_found"
            assert "minilm-cls" in wrong.json()["error"]["message"]
            omitted = client.post(EMBED, json={"input": text})
            assert omitted.status_code == 400 and omitted.json()["error"]["param"] == "model"
            ids = [card["id"] for card in client.get("/v1/models").json()["data"]]
            assert ids == ["minilm", "minilm-mean", "minilm-cls"]
            cards = {c["id"]: c for c in client.get("/v1/models").json()["data"]}
            assert (cards["minilm"]["pooling"], cards["minilm-cls"]["pooling"]) == ("mean", "cls")
            for name in ("minilm", "minilm-cls"):
                assert client.get(f"/v2/models/{name}/ready").status_code == 200
            metrics = client.get("/metrics").text
            assert 'embedserve_batches_total{model="minilm-cls"}' in metrics
    finally:
        server.stop()


def test_models_by_path_are_served_under_their_directory_names(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        (tmp_path / name).symlink_to(bundled_model_path(), target_is_directory=True)
    server = start_server(
        [
            "--backend",
            "fake",
            "--model",
            str(tmp_path / "alpha"),
            "--model",
            str(tmp_path / "beta"),
        ],
        tmp_path / "server.log",
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            ids = [card["id"] for card in client.get("/v1/models").json()["data"]]
            assert ids == ["alpha", "beta"]
            for name in ids:
                ok = client.post(EMBED, json={"model": name, "input": "x"})
                assert ok.status_code == 200 and ok.json()["model"] == name
    finally:
        server.stop()


def test_matryoshka_dimensions_list(tmp_path: Path) -> None:
    config = tmp_path / "models.json"
    config.write_text('{"models": [{"id": "m", "matryoshka_dimensions": [128, 64]}]}')
    (entry,) = load_models_file(config, ModelSettings())
    assert entry.matryoshka_dimensions == (128, 64)
    bad = tmp_path / "bad.json"
    bad.write_text('{"models": [{"id": "m", "matryoshka_dimensions": [0]}]}')
    with pytest.raises(ValueError, match=r"models\[0\]\.matryoshka_dimensions.*greater than 0"):
        load_models_file(bad, ModelSettings())


def test_calibration_files_are_relative_to_the_models_file(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "models.json"
    config.parent.mkdir()
    entries = [
        {"id": "a", "calibration_texts": "texts/sample.txt"},
        {"id": "b", "int8_ranges": "/abs/ranges.npy"},
    ]
    config.write_text(json.dumps({"models": entries}))
    first, second = load_models_file(config, ModelSettings())
    assert first.calibration_texts == config.parent / "texts" / "sample.txt"
    assert first.int8_ranges is None
    assert second.int8_ranges == Path("/abs/ranges.npy")


async def test_declared_matryoshka_sizes_restrict_dimensions(bundled_spec: object) -> None:
    import dataclasses

    from embedserve.engine import Engine
    from embedserve.models import ModelSpec
    from tests.conftest import fake_runner, serve_in_process

    assert isinstance(bundled_spec, ModelSpec)
    spec = dataclasses.replace(bundled_spec, matryoshka=True, matryoshka_dimensions=(64, 128))
    runner, _ = fake_runner(spec)
    async with serve_in_process(Engine([runner])) as client:
        for size in (64, 128, 384):
            ok = await client.post(EMBED, json={"input": "x", "dimensions": size})
            assert len(ok.json()["data"][0]["embedding"]) == size
        refused = await client.post(EMBED, json={"input": "x", "dimensions": 100})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid_dimensions" and "64, 128, 384" in error["message"]


def test_models_file_flag_variable_and_older_name(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  - id: a\n    max_length: 64\n")
    from embedserve import cli

    for argv, environ in (
        (["serve", "--models-file", str(config)], {}),
        (["serve", "--config", str(config)], {}),
        (["serve"], {"EMBEDSERVE_MODELS_FILE": str(config)}),
        (["serve"], {"EMBEDSERVE_CONFIG": str(config)}),
    ):
        args = vars(cli.build_parser().parse_args(argv))
        (model,) = settings_from_sources(args, environ).models
        assert (model.served_names, model.max_length) == (("a",), 64), argv


def test_flags_give_the_defaults_of_models_file_entries(tmp_path: Path) -> None:
    config = tmp_path / "models.json"
    config.write_text('{"models": [{"id": "a"}, {"id": "b", "max_batch_tokens": 64}]}')
    given = {"models_file": str(config), "max_batch_tokens": 1024, "pooling": "cls"}
    a, b = settings_from_sources(given, {}).models
    assert (a.limits.max_batch_tokens, b.limits.max_batch_tokens) == (1024, 64)
    assert a.pooling == b.pooling == "cls"
