"""One served model: its spec and names, tokenizer, executor and scheduler."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from embedserve.backends import Backend, create_backend
from embedserve.calibration import Calibration
from embedserve.executor import Executor
from embedserve.models import (
    BUNDLED_MODEL_ALIASES,
    BUNDLED_MODEL_ID,
    ModelSpec,
    Pooling,
    bundled_model_path,
    load_model_spec,
)
from embedserve.prompts import input_type_mapping
from embedserve.result_cache import ResultCache
from embedserve.scheduler import Scheduler
from embedserve.settings import BatchingLimits, ModelSettings, auto, resolve_cache_dir
from embedserve.stats import RequestStats
from embedserve.tokenization import TextTokenizer

log = logging.getLogger(__name__)
DETERMINISTIC_BUCKET = 4  # deterministic mode pads each input to a multiple of this
BackendFactory = Callable[[], Backend]


@dataclass(frozen=True)
class ModelInfo:
    """What `/v1/models` shows about one served model."""

    id: str
    aliases: tuple[str, ...]
    created: int
    max_model_len: int
    dimensions: int
    pooling: str
    normalized: bool
    matryoshka: bool
    backend: str
    device: str
    ready: bool
    prompts: dict[str, str]
    default_prompt_name: str | None
    input_types: dict[str, str | None]
    deterministic: bool
    cache_entries: int
    task: str  # "embed", or "rerank" for a cross-encoder


class ModelRunner:
    """One served model: its spec and names, tokenizer, backend and scheduler."""

    def __init__(
        self,
        spec: ModelSpec,
        names: Sequence[str],
        backend_factory: BackendFactory,
        *,
        limits: BatchingLimits | None = None,
        backend_name: str = "custom",
        device: str = "cpu",
        truncate: str = "NONE",
        chunk_overlap: int = 0,
        calibration: Calibration | None = None,
        deterministic: bool = False,
        cache_entries: int = 0,
        precision: str = "fp32",
    ) -> None:
        if not names:
            raise ValueError("a model needs at least one served name")
        self.spec = spec
        self.names = tuple(names)
        self.tokenizer = TextTokenizer(spec)
        self.limits = limits or BatchingLimits()
        self.backend_name = backend_name
        self.precision = precision
        self.device = device
        self.truncate = truncate  # what over-long inputs get when a request does not say
        self.chunk_overlap = chunk_overlap  # CHUNK: tokens shared by consecutive windows
        self.deterministic = deterministic  # inputs padded to buckets of their own length
        self.result_cache = ResultCache(cache_entries) if cache_entries else None
        room = spec.max_length - self.tokenizer.num_special_tokens
        if chunk_overlap >= room:
            raise ValueError(
                f"--chunk-overlap {chunk_overlap} must be below the {room} content tokens a "
                f"window of {self.id!r} holds"
            )
        self.created = int(time.time())
        self.calibration = calibration or Calibration(
            spec, cache_dir=resolve_cache_dir(None), runtime=f"{backend_name};{device}"
        )
        self._backend_factory = backend_factory
        self.executor: Executor | None = None
        self.scheduler: Scheduler | None = None
        self.request_stats = RequestStats()

    @property
    def max_input_chars(self) -> int:
        """Characters per input above which it is refused (or cut) before tokenizing."""
        return auto.max_input_chars(self.limits, self.spec.max_length)

    @property
    def ready(self) -> bool:
        """Loaded, and its scheduler can take work."""
        return self.scheduler is not None and self.scheduler.ready

    @property
    def id(self) -> str:
        """The canonical served id (the first name)."""
        return self.names[0]

    @classmethod
    def from_settings(cls, settings: ModelSettings, cache_dir: Path) -> ModelRunner:
        """Read the model directory now; the backend loads later, in `load()`."""
        spec = load_model_spec(
            settings.path or bundled_model_path(),
            pooling=Pooling(settings.pooling) if settings.pooling else None,
            normalize=settings.normalize,
            max_length=settings.max_length,
            matryoshka=settings.matryoshka,
            trust_remote_code=settings.trust_remote_code,
            matryoshka_dimensions=settings.matryoshka_dimensions,
            prompts=settings.prompts,
            default_prompt_name=settings.default_prompt_name,
            task=settings.task,
        )
        if settings.path is None:
            names = settings.served_names or (BUNDLED_MODEL_ID, *BUNDLED_MODEL_ALIASES)
        else:
            names = settings.served_names or (settings.path.name,)
        kind = auto.backend(settings)
        factory = functools.partial(
            create_backend,
            kind,
            spec,
            device=settings.device,
            cache_dir=cache_dir,
            precision=settings.precision,
            fake_faults=settings.fake_faults,
        )
        return cls(
            spec,
            names,
            factory,
            limits=settings.limits,
            backend_name=kind,
            device=settings.device,
            truncate=settings.truncate,
            chunk_overlap=settings.chunk_overlap,
            deterministic=auto.deterministic(settings),
            cache_entries=settings.cache_entries,
            precision=settings.precision,
            calibration=Calibration(
                spec,
                cache_dir=cache_dir,
                runtime=f"{kind};{settings.precision};{settings.device}",
                texts_path=settings.calibration_texts,
                ranges_path=settings.int8_ranges,
            ),
        )

    def load(self) -> None:
        """Load the backend, warm it up with one batch, start the scheduler (blocking)."""
        started = time.perf_counter()
        executor = Executor(self._backend_factory(), self.spec, deterministic=self.deterministic)
        executor.run(self.tokenizer.encode(["warm up the model"]))
        limits = self.limits
        speed = executor.measure_tokens_per_second(limits.max_batch_tokens)
        scheduler = Scheduler(
            executor,
            max_batch_tokens=limits.max_batch_tokens,
            max_batch_size=limits.max_batch_size,
            max_queue_tokens=limits.max_queue_tokens,
            max_queue_seconds=limits.max_queue_seconds,
            max_padding=auto.max_padding(limits, self.device),
            tokens_per_second=speed,
            max_failed_batches=limits.max_failed_batches,
            name=self.id,
            bucket=DETERMINISTIC_BUCKET if self.deterministic else 0,
        )
        scheduler.start()
        self.executor, self.scheduler = executor, scheduler
        bound = f"{limits.max_queue_seconds}s" if limits.max_queue_seconds else "none"
        log.info(
            "model %s ready on %s/%s in %.1fs (%.0f tokens/s measured); admission: queue "
            "limit %d tokens, latency bound %s, %d inputs and %d tokens per request, %d "
            "characters per input",
            self.id,
            self.backend_name,
            self.device,
            time.perf_counter() - started,
            speed,
            limits.max_queue_tokens,
            bound,
            limits.max_client_batch_size,
            limits.max_request_tokens,
            self.max_input_chars,
        )

    def close(self) -> None:
        """Stop the scheduler and release the backend."""
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.executor is not None:
            self.executor.close()
        self.scheduler, self.executor = None, None

    def info(self) -> ModelInfo:
        """The public description of this model."""
        return ModelInfo(
            id=self.id,
            aliases=self.names[1:],
            created=self.created,
            max_model_len=self.spec.max_length,
            dimensions=self.spec.output_dimensions,
            pooling=self.spec.pooling.value,
            normalized=self.spec.normalize,
            matryoshka=self.spec.matryoshka,
            backend=self.backend_name,
            device=self.device,
            ready=self.ready,
            prompts=self.spec.prompt_map,
            default_prompt_name=self.spec.default_prompt_name,
            input_types=input_type_mapping(self.spec),
            deterministic=self.deterministic,
            cache_entries=0 if self.result_cache is None else self.result_cache.entries,
            task="embed" if self.spec.score_head is None else "rerank",
        )
