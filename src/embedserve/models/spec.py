"""Read a model directory (Hugging Face or sentence-transformers layout) into a `ModelSpec`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from embedserve.errors import ModelLoadError
from embedserve.models.cross_encoder import ScoreHead, score_head, serves_pairs

# Families whose position ids start after the padding index (RoBERTa's scheme): a table of
# `max_position_embeddings` rows holds `max_position_embeddings - pad_token_id - 1` tokens.
_POSITIONS_AFTER_PADDING = {
    "roberta",
    "xlm-roberta",
    "xlm-roberta-xl",
    "camembert",
    "mpnet",
    "longformer",
    "data2vec-text",
}
# Tokenizer configs use huge sentinels (1e30) for "no limit"; anything above this is not a real one.
_NO_LIMIT = 1_000_000


class Pooling(StrEnum):
    """How token embeddings become one vector."""

    CLS = "cls"
    MEAN = "mean"
    MAX = "max"
    LAST = "last"


@dataclass(frozen=True)
class ModelSpec:
    """Everything the engine needs to know about one model directory."""

    path: Path
    model_type: str
    pooling: Pooling
    normalize: bool
    max_length: int
    dimension: int
    vocab_size: int
    padding_side: str
    pad_token_id: int
    matryoshka: bool = False
    dense_dirs: tuple[Path, ...] = ()  # sentence-transformers Dense modules, applied in order
    trust_remote_code: bool = False  # the operator allowed the model's own Python code
    prompts: tuple[tuple[str, str], ...] = ()  # (name, text) the model declares, in order
    default_prompt_name: str | None = None  # prepended when a request names no prompt
    default_dimensions: int | None = None  # sentence-transformers truncate_dim: default output size
    matryoshka_dimensions: tuple[int, ...] = ()  # the trained sizes, when declared; else any size
    score_head: ScoreHead | None = None  # a cross-encoder's: logits -> scores; else None
    sep_token_id: int | None = None  # the separator between a pair's texts
    type_vocab_size: int = 0  # token types the encoder knows (BERT: 2; RoBERTa-likes: 1 or 0)

    @property
    def output_dimensions(self) -> int:
        """The size of a vector when the request names no `dimensions`."""
        return self.default_dimensions or self.dimension

    @property
    def prompt_map(self) -> dict[str, str]:
        """Prompt name -> the text prepended to an input."""
        return dict(self.prompts)

    @property
    def default_prompt(self) -> str:
        """The prompt of a request that names none ('' when the model has no default)."""
        return self.prompt_map.get(self.default_prompt_name or "", "")

    @property
    def tokenizer_file(self) -> Path:
        """The fast-tokenizer file of the model."""
        return self.path / "tokenizer.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc


def module_kind(module: dict[str, Any]) -> str:
    """`Pooling`, `Dense`, `Normalize`, ... whatever the package path of the class (it moved
    from `sentence_transformers.models` to `sentence_transformers.base.modules` in 6.x)."""
    return str(module.get("type", "")).rsplit(".", 1)[-1]


def _module_dirs(path: Path, modules: list[dict[str, Any]] | None, kind: str) -> list[Path]:
    return [path / str(m.get("path", "")) for m in modules or [] if module_kind(m) == kind]


def _pooling_dir(path: Path, modules: list[dict[str, Any]] | None) -> Path:
    found = _module_dirs(path, modules, "Pooling")
    return found[0] if found else path / "1_Pooling"


def _pooling_from_config(config: dict[str, Any] | None) -> Pooling | None:
    """Translate a sentence-transformers `1_Pooling/config.json` into one `Pooling`."""
    if not config:
        return None
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        aliases = {"lasttoken": "last", "last_token": "last", "mean_tokens": "mean"}
        try:
            return Pooling(aliases.get(mode, mode))
        except ValueError as exc:
            raise ModelLoadError(f"unsupported pooling mode {mode!r}") from exc
    flags = {
        "pooling_mode_cls_token": Pooling.CLS,
        "pooling_mode_mean_tokens": Pooling.MEAN,
        "pooling_mode_max_tokens": Pooling.MAX,
        "pooling_mode_lasttoken": Pooling.LAST,
    }
    chosen = [pooling for key, pooling in flags.items() if config.get(key)]
    unsupported = [key for key in ("pooling_mode_mean_sqrt_len_tokens",) if config.get(key)]
    if unsupported or len(chosen) > 1:
        raise ModelLoadError(f"unsupported pooling combination in 1_Pooling/config.json: {config}")
    return chosen[0] if chosen else None


def _max_length(
    config: dict[str, Any], st_config: dict[str, Any] | None, tok_config: dict[str, Any] | None
) -> int:
    candidates: list[int] = []
    if st_config and isinstance(st_config.get("max_seq_length"), int):
        candidates.append(st_config["max_seq_length"])
    elif tok_config and isinstance(tok_config.get("model_max_length"), int | float):
        declared = tok_config["model_max_length"]
        if declared < _NO_LIMIT:
            candidates.append(int(declared))
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int):
        if config.get("model_type") in _POSITIONS_AFTER_PADDING:
            positions -= int(config.get("pad_token_id") or 0) + 1
        candidates.append(positions)
    if not candidates:
        raise ModelLoadError("cannot tell the model's max length: no max_seq_length or positions")
    return min(candidates)


def load_model_spec(
    path: Path,
    *,
    pooling: Pooling | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
    matryoshka: bool = False,
    trust_remote_code: bool = False,
    matryoshka_dimensions: tuple[int, ...] = (),
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
    task: str = "auto",
) -> ModelSpec:
    """Derive pooling, max length, dimension and normalisation from a model directory.

    Explicit arguments override what the directory declares; `task` (auto, embed or rerank)
    whether it is served as a cross-encoder.
    """
    path = Path(path).expanduser().resolve()
    config = _read_json(path / "config.json")
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path} is not a model directory: it has no config.json")
    if config.get("auto_map") and not trust_remote_code:
        raise ModelLoadError(
            f"{path} ships its own model code (auto_map in config.json: "
            f"{sorted(config['auto_map'])}); it runs only if you allow it: review the code, then "
            "start with --trust-remote-code (or `trust_remote_code: true` in --config)"
        )
    if not (path / "tokenizer.json").is_file():
        raise ModelLoadError(f"{path} has no tokenizer.json (a fast tokenizer is required)")
    modules = _read_json(path / "modules.json")
    st_config = _read_json(path / "sentence_bert_config.json")
    tok_config = _read_json(path / "tokenizer_config.json") or {}
    pooling_config = _read_json(_pooling_dir(path, modules) / "config.json")

    declared_pooling = _pooling_from_config(pooling_config)
    if normalize is None:
        # modules.json is the model's own word; without it, OpenAI's behaviour (unit vectors).
        normalize = (
            any(module_kind(m) == "Normalize" for m in modules)
            if isinstance(modules, list)
            else True
        )
    hidden = config.get("hidden_size") or config.get("d_model")
    dimension = (pooling_config or {}).get("word_embedding_dimension") or hidden
    dense_dirs = tuple(_module_dirs(path, modules, "Dense"))
    for dense_dir in dense_dirs:
        dense_config = _read_json(dense_dir / "config.json")
        if not isinstance(dense_config, dict) or "out_features" not in dense_config:
            raise ModelLoadError(f"{dense_dir}/config.json is missing or has no out_features")
        dimension = dense_config["out_features"]
    if not isinstance(dimension, int) or not isinstance(config.get("vocab_size"), int):
        raise ModelLoadError(f"{path}/config.json lacks hidden_size or vocab_size")
    declared_max = _max_length(config, st_config, tok_config)
    st_meta = _read_json(path / "config_sentence_transformers.json") or {}
    declared = st_meta.get("prompts") or {}
    if not isinstance(declared, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in declared.items()
    ):
        raise ModelLoadError(
            "`prompts` in config_sentence_transformers.json must map names to text"
        )
    merged = {**declared, **(prompts or {})}  # the models file's prompts win
    default_name = default_prompt_name or st_meta.get("default_prompt_name") or None
    if default_name is not None and default_name not in merged:
        raise ModelLoadError(
            f"default prompt {default_name!r} is not one of the model's prompts "
            f"({', '.join(sorted(merged)) or 'none'})"
        )
    truncate_dim = st_meta.get("truncate_dim")
    if truncate_dim is not None and not (
        isinstance(truncate_dim, int) and 0 < truncate_dim <= dimension
    ):
        raise ModelLoadError(f"truncate_dim {truncate_dim!r} in config_sentence_transformers.json")
    pad_id = config.get("pad_token_id")
    return ModelSpec(
        path=path,
        model_type=str(config.get("model_type", "unknown")),
        pooling=pooling or declared_pooling or Pooling.MEAN,
        normalize=normalize,
        max_length=min(max_length, declared_max) if max_length else declared_max,
        dimension=dimension,
        vocab_size=config["vocab_size"],
        padding_side=str(tok_config.get("padding_side", "right")),
        pad_token_id=pad_id if isinstance(pad_id, int) else 0,
        # truncate_dim means the author trained (and serves) the model matryoshka-style
        matryoshka=matryoshka or truncate_dim is not None or bool(matryoshka_dimensions),
        matryoshka_dimensions=tuple(sorted(matryoshka_dimensions)),
        dense_dirs=dense_dirs,
        trust_remote_code=trust_remote_code,
        prompts=tuple(merged.items()),
        default_prompt_name=default_name,
        default_dimensions=truncate_dim,
        score_head=score_head(config) if serves_pairs(config, task) else None,
        sep_token_id=_sep_token_id(path, tok_config),
        type_vocab_size=int(config.get("type_vocab_size") or 0),
    )


def _sep_token_id(path: Path, tok_config: dict[str, Any]) -> int | None:
    """The id of the tokenizer's separator token (`[SEP]`, `</s>`), if it declares one."""
    from tokenizers import Tokenizer

    sep = tok_config.get("sep_token")
    if isinstance(sep, dict):
        sep = sep.get("content")
    if not isinstance(sep, str):
        return None
    found = Tokenizer.from_file(str(path / "tokenizer.json")).token_to_id(sep)
    return found if isinstance(found, int) else None
