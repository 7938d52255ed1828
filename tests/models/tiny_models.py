"""Tiny random models saved as real model directories, for tests that must not touch a hub.

Each builder writes what a sentence-transformers checkpoint holds: the `transformers` config and
weights (`save_pretrained`), the bundled model's tokenizer files, and the sentence-transformers
metadata (`modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`) written by hand.

The weights use `initializer_range=0.5`: with the default (0.02) a tiny random encoder maps every
text to nearly the same vector, and a parity check on such a model cannot fail.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from embedserve.models import bundled_model_path

HIDDEN_SIZE = 32
MAX_SEQ_LENGTH = 128
VOCAB_SIZE = 30522  # the bundled BERT tokenizer's vocabulary
INITIALIZER_RANGE = 0.5
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)
POOLING_FLAGS = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "last": "pooling_mode_lasttoken",
}
# Mean pooling over 2 random layers spreads texts less than CLS does, and how much depends on the
# draw: these seeds give a max pairwise cosine of ~0.95-0.97 over the test texts (seed 0 gives
# 0.99 for XLM-R, too close to tell texts apart).
DISTINCT_SEEDS = {"xlm-roberta": 3, "mpnet": 1}
_SMALL_SHAPE: dict[str, Any] = {
    "vocab_size": VOCAB_SIZE,
    "hidden_size": HIDDEN_SIZE,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "initializer_range": INITIALIZER_RANGE,
}


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def copy_bundled_tokenizer(path: Path) -> None:
    """Copy the bundled model's (BERT uncased WordPiece) tokenizer files into `path`."""
    source = bundled_model_path()
    for name in TOKENIZER_FILES:
        shutil.copyfile(source / name, path / name)


def write_sentence_transformers_metadata(path: Path, pooling: str, normalize: bool) -> None:
    """`modules.json` (Transformer, Pooling, optional Normalize), the pooling config and
    `sentence_bert_config.json`, as sentence-transformers saves them."""
    if pooling not in POOLING_FLAGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {sorted(POOLING_FLAGS)}")
    modules: list[dict[str, Any]] = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if normalize:
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
        (path / "2_Normalize").mkdir(exist_ok=True)
    _write_json(path / "modules.json", modules)
    pooling_config: dict[str, Any] = {"word_embedding_dimension": HIDDEN_SIZE}
    for mode, flag in POOLING_FLAGS.items():
        pooling_config[flag] = mode == pooling
    pooling_config["pooling_mode_mean_sqrt_len_tokens"] = False
    pooling_config["pooling_mode_weightedmean_tokens"] = False
    pooling_config["include_prompt"] = True
    _write_json(path / "1_Pooling" / "config.json", pooling_config)
    _write_json(
        path / "sentence_bert_config.json",
        {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False},
    )


def _save(model: Any, path: Path, pooling: str, normalize: bool) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(str(path))
    copy_bundled_tokenizer(path)
    write_sentence_transformers_metadata(path, pooling, normalize)
    return path


def build_bert(path: Path, pooling: str = "cls", normalize: bool = True, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random BERT with the bundled tokenizer and the given pooling."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(**_SMALL_SHAPE, max_position_embeddings=MAX_SEQ_LENGTH, pad_token_id=0)
    torch.manual_seed(seed)
    return _save(BertModel(config), path, pooling, normalize)


def build_xlm_roberta_or_mpnet(
    path: Path,
    architecture: str = "xlm-roberta",
    pooling: str = "mean",
    normalize: bool = True,
    seed: int | None = None,
) -> Path:
    """A tiny random XLM-RoBERTa (or MPNet) with mean pooling, reusing the bundled BERT tokenizer.

    Both architectures number positions from `padding_idx + 1` (the pad id is 0 here, as in the
    BERT vocabulary), so they get `max_seq_length + 2` position embeddings, as real ones do.
    """
    import torch

    if seed is None:
        seed = DISTINCT_SEEDS.get(architecture, 0)

    shape = {**_SMALL_SHAPE, "max_position_embeddings": MAX_SEQ_LENGTH + 2, "pad_token_id": 0}
    torch.manual_seed(seed)
    if architecture == "xlm-roberta":
        from transformers import XLMRobertaConfig, XLMRobertaModel

        # BERT's [CLS]/[SEP] ids stand in for <s>/</s>; nothing here depends on them.
        model: Any = XLMRobertaModel(XLMRobertaConfig(**shape, bos_token_id=101, eos_token_id=102))
    elif architecture == "mpnet":
        from transformers import MPNetConfig, MPNetModel

        model = MPNetModel(MPNetConfig(**shape, bos_token_id=101, eos_token_id=102))
    else:
        raise ValueError(f"unknown architecture {architecture!r}; choose xlm-roberta or mpnet")
    return _save(model, path, pooling, normalize)


def build_qwen3(path: Path) -> Path:
    """Tiny random Qwen3 (the Qwen3-Embedding family): LAST pooling, left padding."""
    import torch
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=30522,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
        pad_token_id=0,
        initializer_range=0.5,
    )
    Qwen3Model(config).save_pretrained(path)
    for name in ("tokenizer.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(bundled_model_path() / name, path / name)
    tokenizer_config = json.loads((bundled_model_path() / "tokenizer_config.json").read_text())
    tokenizer_config["padding_side"] = "left"
    (path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize",
        },
    ]
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": 32, "pooling_mode_lasttoken": True}
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    return path


def build_dense_model(root: Path, *, activation: Any, normalize: bool) -> Path:
    """A tiny random BERT with MEAN pooling and a Dense(32 -> 16) head (activation: a torch
    module), saved by sentence-transformers itself."""
    from sentence_transformers import SentenceTransformer, models

    base = build_bert(root / "base", pooling="mean", seed=7)
    modules = [
        models.Transformer(str(base), max_seq_length=128),
        models.Pooling(32, pooling_mode="mean"),
        models.Dense(32, 16, activation_function=activation),
    ]
    if normalize:
        modules.append(models.Normalize())
    target = root / "model"
    SentenceTransformer(modules=modules, device="cpu").save(str(target))
    return target


def build_cross_encoder(
    path: Path, *, seed: int = 0, architecture: str = "bert", num_labels: int = 1
) -> Path:
    """A 2-layer random `*ForSequenceClassification` (one label unless told), as
    sentence-transformers' `CrossEncoder` loads it: BERT (token types, `[CLS] q [SEP] d [SEP]`)
    or XLM-RoBERTa (one token type, none fed; RoBERTa's `<s> q </s></s> d </s>` template)."""
    import torch

    torch.manual_seed(seed)
    model: Any
    if architecture == "bert":
        from transformers import BertConfig, BertForSequenceClassification

        shape = {**_SMALL_SHAPE, "max_position_embeddings": MAX_SEQ_LENGTH, "pad_token_id": 0}
        model = BertForSequenceClassification(BertConfig(**shape, num_labels=num_labels))
    elif architecture == "xlm-roberta":
        from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

        # Positions count from padding_idx + 1 = 1: MAX_SEQ_LENGTH + 1 of them hold 128 tokens.
        shape = {**_SMALL_SHAPE, "max_position_embeddings": MAX_SEQ_LENGTH + 1, "pad_token_id": 0}
        config = XLMRobertaConfig(
            **shape, type_vocab_size=1, bos_token_id=101, eos_token_id=102, num_labels=num_labels
        )
        model = XLMRobertaForSequenceClassification(config)
    else:
        raise ValueError(f"unknown architecture {architecture!r}; choose bert or xlm-roberta")
    path.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(str(path))
    copy_bundled_tokenizer(path)
    if architecture == "xlm-roberta":
        _use_roberta_pair_template(path)
    return path


def _use_roberta_pair_template(path: Path) -> None:
    """RoBERTa's post-processor on the bundled tokenizer ([CLS]/[SEP] standing in for <s>/</s>)
    and no token type ids from `transformers`' tokenizer, as XLM-R's own tokenizer has."""
    tokenizer = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["post_processor"] = {
        "type": "RobertaProcessing",
        "sep": ["[SEP]", 102],
        "cls": ["[CLS]", 101],
        "trim_offsets": True,
        "add_prefix_space": False,
    }
    _write_json(path / "tokenizer.json", tokenizer)
    tok_config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok_config["model_input_names"] = ["input_ids", "attention_mask"]
    # transformers 5 rebuilds a BertTokenizer's post-processor; the generic class keeps ours
    tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    _write_json(path / "tokenizer_config.json", tok_config)
