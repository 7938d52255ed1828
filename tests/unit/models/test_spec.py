"""Reading model directories into a `ModelSpec`: the bundled model and small fake layouts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from embedserve.errors import ModelLoadError
from embedserve.models import ModelSpec, Pooling, bundled_model_path, load_model_spec

NORMALIZE = {
    "idx": 2,
    "name": "2",
    "path": "2_Normalize",
    "type": "sentence_transformers.models.Normalize",
}
TRANSFORMER = {
    "idx": 0,
    "name": "0",
    "path": "",
    "type": "sentence_transformers.models.Transformer",
}
POOLING = {
    "idx": 1,
    "name": "1",
    "path": "1_Pooling",
    "type": "sentence_transformers.models.Pooling",
}

CONFIG = {
    "model_type": "bert",
    "hidden_size": 32,
    "vocab_size": 30522,
    "max_position_embeddings": 512,
    "pad_token_id": 0,
}


def pooling_flags(**chosen: bool) -> dict[str, Any]:
    flags: dict[str, Any] = {
        "word_embedding_dimension": 32,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    flags.update(chosen)
    return flags


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def make_model(
    root: Path,
    *,
    config: dict[str, Any] | None = None,
    modules: list[dict[str, Any]] | None = None,
    pooling: dict[str, Any] | None = None,
    tokenizer: bool = True,
    extra: dict[str, Any] | None = None,
) -> Path:
    """A model directory with the bundled tokenizer.json and the given metadata files."""
    root.mkdir(parents=True, exist_ok=True)
    if tokenizer:
        shutil.copy(bundled_model_path() / "tokenizer.json", root / "tokenizer.json")
    if config is not None:
        write_json(root / "config.json", config)
    if modules is not None:
        write_json(root / "modules.json", modules)
    if pooling is not None:
        write_json(root / "1_Pooling" / "config.json", pooling)
    for name, data in (extra or {}).items():
        write_json(root / name, data)
    return root


def test_bundled_model_spec(bundled_spec: ModelSpec) -> None:
    assert bundled_spec.path == bundled_model_path().resolve()
    assert bundled_spec.model_type == "bert"
    assert bundled_spec.pooling is Pooling.MEAN
    # sentence_bert_config.json says 256; tokenizer.json truncates at 128, config allows 512.
    assert bundled_spec.max_length == 256
    assert bundled_spec.normalize is True
    assert bundled_spec.dimension == 384
    assert bundled_spec.vocab_size == 30522
    assert bundled_spec.padding_side == "right"
    assert bundled_spec.pad_token_id == 0
    assert bundled_spec.matryoshka is False
    assert bundled_spec.tokenizer_file == bundled_spec.path / "tokenizer.json"
    assert bundled_spec.tokenizer_file.is_file()


def test_bundled_overrides() -> None:
    path = bundled_model_path()
    spec = load_model_spec(
        path, pooling=Pooling.CLS, normalize=False, max_length=64, matryoshka=True
    )
    assert spec.pooling is Pooling.CLS
    assert spec.normalize is False
    assert spec.max_length == 64
    assert spec.matryoshka is True
    # An override can shorten the limit, never lengthen it past what the model declares.
    assert load_model_spec(path, max_length=1000).max_length == 256


def test_cls_pooling(tmp_path: Path) -> None:
    path = make_model(
        tmp_path / "m",
        config=CONFIG,
        modules=[TRANSFORMER, POOLING, NORMALIZE],
        pooling=pooling_flags(pooling_mode_cls_token=True),
    )
    spec = load_model_spec(path)
    assert spec.pooling is Pooling.CLS
    assert spec.normalize is True
    assert spec.dimension == 32
    assert spec.max_length == 512
    assert spec.vocab_size == 30522


def test_max_pooling_flag(tmp_path: Path) -> None:
    path = make_model(
        tmp_path / "m", config=CONFIG, pooling=pooling_flags(pooling_mode_max_tokens=True)
    )
    assert load_model_spec(path).pooling is Pooling.MAX


@pytest.mark.parametrize(
    "pooling",
    [
        {"word_embedding_dimension": 32, "pooling_mode_lasttoken": True},
        {"word_embedding_dimension": 32, "pooling_mode": "lasttoken"},
        {"word_embedding_dimension": 32, "pooling_mode": "last_token"},
    ],
)
def test_last_token_pooling(tmp_path: Path, pooling: dict[str, Any]) -> None:
    path = make_model(tmp_path / "m", config=CONFIG, pooling=pooling)
    assert load_model_spec(path).pooling is Pooling.LAST


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("max", Pooling.MAX),
        ("cls", Pooling.CLS),
        ("mean", Pooling.MEAN),
        ("mean_tokens", Pooling.MEAN),
    ],
)
def test_pooling_mode_string_form(tmp_path: Path, mode: str, expected: Pooling) -> None:
    path = make_model(tmp_path / "m", config=CONFIG, pooling={"pooling_mode": mode})
    assert load_model_spec(path).pooling is expected


def test_no_pooling_config_defaults_to_mean(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m", config=CONFIG)
    assert load_model_spec(path).pooling is Pooling.MEAN
    path = make_model(tmp_path / "flags-off", config=CONFIG, pooling=pooling_flags())
    assert load_model_spec(path).pooling is Pooling.MEAN


def test_pooling_directory_named_by_modules_json(tmp_path: Path) -> None:
    path = make_model(
        tmp_path / "m",
        config=CONFIG,
        modules=[TRANSFORMER, {**POOLING, "path": "pool_here"}],
        pooling=pooling_flags(pooling_mode_mean_tokens=True),  # 1_Pooling: must be ignored
    )
    write_json(path / "pool_here" / "config.json", pooling_flags(pooling_mode_cls_token=True))
    assert load_model_spec(path).pooling is Pooling.CLS


def test_no_modules_json_normalizes_by_default(tmp_path: Path) -> None:
    path = make_model(
        tmp_path / "m", config=CONFIG, pooling=pooling_flags(pooling_mode_mean_tokens=True)
    )
    assert load_model_spec(path).normalize is True


def test_modules_json_without_normalize(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m", config=CONFIG, modules=[TRANSFORMER, POOLING])
    assert load_model_spec(path).normalize is False
    assert load_model_spec(path, normalize=True).normalize is True


def test_explicit_overrides(tmp_path: Path) -> None:
    path = make_model(
        tmp_path / "m",
        config=CONFIG,
        modules=[TRANSFORMER, POOLING, NORMALIZE],
        pooling=pooling_flags(pooling_mode_cls_token=True),
    )
    spec = load_model_spec(path, pooling=Pooling.LAST, normalize=False, max_length=100)
    assert spec.pooling is Pooling.LAST
    assert spec.normalize is False
    assert spec.max_length == 100
    assert load_model_spec(path, max_length=4096).max_length == 512


def test_max_length_sources(tmp_path: Path) -> None:
    # tokenizer_config's model_max_length counts when there is no sentence_bert_config.json.
    path = make_model(
        tmp_path / "tok",
        config=CONFIG,
        extra={"tokenizer_config.json": {"model_max_length": 128, "padding_side": "left"}},
    )
    spec = load_model_spec(path)
    assert spec.max_length == 128
    assert spec.padding_side == "left"
    # The huge "no limit" sentinel is ignored: positions decide.
    path = make_model(
        tmp_path / "sentinel",
        config=CONFIG,
        extra={"tokenizer_config.json": {"model_max_length": 1e30}},
    )
    assert load_model_spec(path).max_length == 512
    # sentence_bert_config.json wins over tokenizer_config.json, capped by positions.
    path = make_model(
        tmp_path / "st",
        config=CONFIG,
        extra={
            "sentence_bert_config.json": {"max_seq_length": 8192},
            "tokenizer_config.json": {"model_max_length": 128},
        },
    )
    assert load_model_spec(path).max_length == 512


def test_hidden_size_is_the_dimension_without_pooling_config(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m", config={**CONFIG, "hidden_size": 48, "pad_token_id": 7})
    spec = load_model_spec(path)
    assert spec.dimension == 48
    assert spec.pad_token_id == 7


def test_missing_config_json(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m")
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        load_model_spec(path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a model directory"):
        load_model_spec(tmp_path / "does-not-exist")


def test_missing_tokenizer_json(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m", config=CONFIG, tokenizer=False)
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json"):
        load_model_spec(path)


def test_malformed_config_json(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m")
    (path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        load_model_spec(path)


def test_config_without_vocab_size(tmp_path: Path) -> None:
    config = {key: value for key, value in CONFIG.items() if key != "vocab_size"}
    path = make_model(tmp_path / "m", config=config)
    with pytest.raises(ModelLoadError, match="vocab_size"):
        load_model_spec(path)


@pytest.mark.parametrize(
    "pooling",
    [
        pooling_flags(pooling_mode_mean_sqrt_len_tokens=True),
        pooling_flags(pooling_mode_mean_tokens=True, pooling_mode_mean_sqrt_len_tokens=True),
        {"pooling_mode": "mean_sqrt_len_tokens"},
        pooling_flags(pooling_mode_cls_token=True, pooling_mode_mean_tokens=True),
        {"pooling_mode": "weightedmean"},
    ],
)
def test_unsupported_pooling(tmp_path: Path, pooling: dict[str, Any]) -> None:
    path = make_model(tmp_path / "m", config=CONFIG, pooling=pooling)
    with pytest.raises(ModelLoadError, match="pooling"):
        load_model_spec(path)


def test_roberta_family_max_length_leaves_room_for_the_padding_offset(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        '{"model_type": "xlm-roberta", "hidden_size": 8, "vocab_size": 100, '
        '"max_position_embeddings": 514, "pad_token_id": 1}'
    )
    shutil.copy(bundled_model_path() / "tokenizer.json", tmp_path / "tokenizer.json")
    assert load_model_spec(tmp_path).max_length == 512
