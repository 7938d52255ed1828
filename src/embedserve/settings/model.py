"""Per-model settings: how to load one model, and the limits of its requests and queue.

Each field is declared once, with its flag, help, default and allowed values; flags and
`EMBEDSERVE_*` variables set the default of every model, models-file entries set one model.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from embedserve.faults import parse_faults
from embedserve.settings.declare import Setting

Backend = Literal["auto", "onnx", "torch", "openvino", "fake"]
Device = Literal["cpu", "cuda"]
Precision = Literal["fp32", "fp16", "int8"]
PoolingName = Literal["cls", "mean", "max", "last"]
TruncateMode = Literal["NONE", "END", "START", "CHUNK"]
Task = Literal["auto", "embed", "rerank"]
BACKENDS: tuple[str, ...] = typing.get_args(Backend)
DEVICES: tuple[str, ...] = typing.get_args(Device)
PRECISIONS: tuple[str, ...] = typing.get_args(Precision)

# Tokens one model may hold waiting: 128 concurrent requests of 64 inputs of 256 tokens each
# (2.1M) fit twice over. Fixed, so the same flags give the same limit on every start.
DEFAULT_QUEUE_TOKENS = 4_194_304
# Characters per token above which a text is refused (or cut, with truncation) before it is
# tokenized: real tokens average 3-6 characters; WordPiece reads at most 100 per word.
CHARS_PER_TOKEN_LIMIT = 64
# Share of a batch's computed tokens that may be padding. Measured on 2 AVX2 cores, mixed
# lengths: 0.05 gives 6.3-6.5k tokens/s over HTTP, 0.25 gives 5.6k, no limit 4.5k.
# GPUs gain more from large batches than they lose to padding.
CPU_MAX_PADDING = 0.05
CUDA_MAX_PADDING = 0.5

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class BatchingLimits(BaseModel):
    """Limits on one request and on the scheduler of one model."""

    model_config = _FROZEN

    max_batch_tokens: Annotated[
        int, Setting("padded-token budget of one forward batch"), Field(ge=1)
    ] = 4096
    max_batch_size: Annotated[
        int, Setting("most inputs in one forward batch (within --max-batch-tokens)"), Field(ge=1)
    ] = 512
    max_client_batch_size: Annotated[
        int, Setting("most inputs accepted in one request"), Field(ge=1)
    ] = 2048
    max_request_tokens: Annotated[
        int, Setting("most tokens accepted in one request (all inputs together)"), Field(ge=1)
    ] = 300_000
    max_queue_tokens: Annotated[
        int,
        Setting(
            "admission control: tokens waiting per model before new requests get 429 (bounds "
            "memory; the default fits 128 concurrent requests of 64 inputs of 256 tokens twice)"
        ),
        Field(ge=1),
    ] = DEFAULT_QUEUE_TOKENS
    max_queue_seconds: Annotated[
        float,
        Setting(
            "opt-in latency bound: refuse (429 + Retry-After) a request whose estimated wait in "
            "the queue, at the measured speed, passes this many seconds; 0 = no bound"
        ),
        Field(ge=0),
    ] = 0.0
    max_input_chars: Annotated[
        int,
        Setting(
            "characters per input above which it is refused before tokenizing (cut first when "
            f"truncation is asked for); 0 = auto: {CHARS_PER_TOKEN_LIMIT} x the model's max "
            "length"
        ),
        Field(ge=0),
    ] = 0
    max_failed_batches: Annotated[
        int,
        Setting(
            "failed forward batches in a row after which a model reports not ready (503) until "
            "a probe batch succeeds"
        ),
        Field(ge=1),
    ] = 5
    max_padding: Annotated[
        float,
        Setting(
            "largest share of padding tokens in a forward batch (length-sorted batches are cut "
            f"beyond it); 0 = auto: {CPU_MAX_PADDING} on cpu, {CUDA_MAX_PADDING} on cuda"
        ),
        Field(ge=0, le=1),
    ] = 0.0


class ModelSettings(BaseModel):
    """How to load and serve one model. Fields left at None take the model directory's word."""

    model_config = _FROZEN

    path: Path | None = None  # None: the bundled default model (from --model or `path`)
    served_names: tuple[str, ...] = ()  # first is the id, the rest aliases (`id`, `aliases`)
    backend: Annotated[
        Backend,
        Setting(
            "inference runtime: auto = onnx on cpu, torch on cuda; openvino = OpenVINO IR on "
            "cpu; fake = hash vectors, for tests"
        ),
    ] = "auto"
    device: Annotated[Device, Setting("where the forward pass runs")] = "cpu"
    precision: Annotated[
        Precision,
        Setting(
            "weights precision: fp16 with --backend onnx, int8 with --backend openvino "
            "(measure it first with `embedserve export`)",
            flags=("--precision", "--dtype"),
        ),
    ] = "fp32"
    task: Annotated[
        Task,
        Setting(
            "embed (vectors) or rerank (a cross-encoder's pair scores); auto = rerank when "
            "config.json names a *ForSequenceClassification architecture"
        ),
    ] = "auto"
    pooling: Annotated[
        PoolingName | None,
        Setting("override the pooling the model directory declares", default_text="declared"),
    ] = None
    normalize: Annotated[
        bool | None,
        Setting(
            "override whether vectors are L2-normalised (default: a Normalize module in "
            "modules.json, else yes)",
            default_text="declared",
        ),
    ] = None
    max_length: Annotated[
        int | None,
        Setting(
            "most tokens per input, at most what the model declares (longer inputs are refused "
            "unless truncation is asked for)",
            flags=("--max-model-len",),
            default_text="declared",
        ),
        Field(ge=1),
    ] = None
    truncate: Annotated[
        TruncateMode,
        Setting(
            "inputs longer than the model reads, when a request does not say: NONE = refuse "
            "(400), END = cut the end, START = cut the start, CHUNK = embed windows of the "
            "model's length and return their token-weighted mean"
        ),
    ] = "NONE"
    chunk_overlap: Annotated[
        int,
        Setting("with CHUNK: tokens each window shares with the previous one"),
        Field(ge=0),
    ] = 0
    deterministic: Annotated[
        bool | None,
        Setting(
            "byte-identical vectors for an input whatever it is batched with: each input is "
            "padded to a width its own length decides (a multiple of 4) and batched only with "
            "inputs of that width",
            default_text="on for cpu",
        ),
    ] = None
    cache_entries: Annotated[
        int,
        Setting(
            "result cache: the vectors of this many recent distinct inputs kept (an LRU keyed "
            "by the exact token ids fed to the model); a repeated input skips the model and "
            "gets the same bytes a miss would; 0 = off"
        ),
        Field(ge=0),
    ] = 4096
    matryoshka: Annotated[
        bool,
        Setting("declare the model matryoshka-trained: accept `dimensions` below the native size"),
    ] = False
    matryoshka_dimensions: Annotated[
        tuple[PositiveInt, ...],
        Setting(
            "the sizes the model was trained for; `dimensions` must be one of them (or native)",
            cli=False,
        ),
    ] = ()
    prompts: Annotated[
        dict[str, str],
        Setting(
            "prompt name -> text prepended to an input, added to (and overriding) the prompts in "
            "the model's config_sentence_transformers.json",
            cli=False,
        ),
    ] = Field(default_factory=dict)
    default_prompt_name: Annotated[
        str | None,
        Setting(
            "the prompt of a request that names none (`input_type`/`prompt_name` null)",
            default_text="declared",
        ),
    ] = None
    calibration_texts: Annotated[
        Path | None,
        Setting(
            "int8/uint8 outputs: a text file (one text per line, like what the model will serve) "
            "whose vectors set each dimension's range, instead of the built-in multilingual sample",
            default_text="built-in",
        ),
    ] = None
    int8_ranges: Annotated[
        Path | None,
        Setting(
            "int8/uint8 outputs: fixed ranges instead of calibrating, as .npy or JSON "
            "[[minima], [maxima]] with one value per dimension of the model's vectors",
            default_text="calibrated",
        ),
    ] = None
    trust_remote_code: Annotated[
        bool,
        Setting(
            "allow models whose config.json maps to their own Python code (auto_map) to run it"
        ),
    ] = False
    fake_faults: Annotated[
        str,
        Setting(
            "tests only, with --backend fake: injected faults, e.g. "
            "`delay=0.1,fail_token=2023,kill_token=2024`"
        ),
    ] = ""
    limits: BatchingLimits = Field(default_factory=BatchingLimits)

    @field_validator("fake_faults")
    @classmethod
    def _faults_parse(cls, value: str) -> str:
        parse_faults(value)
        return value
