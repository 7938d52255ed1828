"""The engine: resolve a model, tokenize and check inputs, batch them, post-process. No HTTP."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from embedserve.backends import Backend, create_backend
from embedserve.backends.base import FloatArray
from embedserve.config import (
    CHARS_PER_TOKEN_LIMIT,
    CPU_MAX_PADDING,
    CUDA_MAX_PADDING,
    BatchingLimits,
    ModelSettings,
    ServerSettings,
)
from embedserve.errors import (
    InvalidRequest,
    ModelNotFound,
    NotReady,
    Overloaded,
    RequestTimeout,
)
from embedserve.input_checks import (
    char_checked,
    check_dimensions,
    check_inputs,
    check_lengths,
    checked_token_ids,
    truncation_limit,
)
from embedserve.models import (
    BUNDLED_MODEL_ALIASES,
    BUNDLED_MODEL_ID,
    ModelSpec,
    Pooling,
    bundled_model_path,
    load_model_spec,
)
from embedserve.models.dense import projection
from embedserve.postprocess import finalize
from embedserve.scheduler import Scheduler
from embedserve.scheduler.admission import measure_tokens_per_second
from embedserve.scheduler.batching import pad_batch
from embedserve.stats import RequestStats
from embedserve.tokenization import TextTokenizer

log = logging.getLogger(__name__)
BackendFactory = Callable[[], Backend]


@dataclass(frozen=True)
class EmbedParams:
    """One embeddings request in engine terms: texts or token ids, never both."""

    texts: Sequence[str] | None = None
    token_ids: Sequence[Sequence[int]] | None = None
    model: str | None = None
    dimensions: int | None = None
    truncate_prompt_tokens: int | None = None


@dataclass(frozen=True)
class EmbedResult:
    """Vectors in input order, the model id that answered, and the tokens fed to the model."""

    model: str
    vectors: FloatArray
    prompt_tokens: int


@dataclass(frozen=True)
class TokenizeResult:
    """Token ids per input for `/tokenize`."""

    model: str
    tokens: list[list[int]]
    max_model_len: int


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
    ) -> None:
        if not names:
            raise ValueError("a model needs at least one served name")
        self.spec = spec
        self.names = tuple(names)
        self.limits = limits or BatchingLimits()
        self.backend_name = backend_name
        self.device = device
        self.created = int(time.time())
        self.tokenizer = TextTokenizer(spec)
        self._backend_factory = backend_factory
        self.backend: Backend | None = None
        self.scheduler: Scheduler | None = None
        self.request_stats = RequestStats()

    @property
    def max_input_chars(self) -> int:
        """Characters per input above which it is refused (or cut) before tokenizing."""
        return self.limits.max_input_chars or CHARS_PER_TOKEN_LIMIT * self.spec.max_length

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
        )
        if settings.path is None:
            names = settings.served_names or (BUNDLED_MODEL_ID, *BUNDLED_MODEL_ALIASES)
        else:
            names = settings.served_names or (settings.path.name,)
        kind = settings.resolved_backend
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
            spec, names, factory, limits=settings.limits, backend_name=kind, device=settings.device
        )

    def load(self) -> None:
        """Load the backend, warm it up with one batch, start the scheduler (blocking)."""
        started = time.perf_counter()
        backend = self._backend_factory()
        warmup = self.tokenizer.encode(["warm up the model"])
        backend.forward(*pad_batch(warmup, self.spec.pad_token_id, self.spec.padding_side))
        limits = self.limits
        speed = measure_tokens_per_second(backend, self.spec, limits.max_batch_tokens)
        default_padding = CUDA_MAX_PADDING if self.device == "cuda" else CPU_MAX_PADDING
        scheduler = Scheduler(
            backend,
            self.spec,
            max_batch_tokens=limits.max_batch_tokens,
            max_queue_tokens=limits.max_queue_tokens,
            max_queue_seconds=limits.max_queue_seconds,
            max_padding=limits.max_padding or default_padding,
            tokens_per_second=speed,
            project=projection(self.spec.dense_dirs),
            max_failed_batches=limits.max_failed_batches,
            name=self.id,
        )
        scheduler.start()
        self.backend, self.scheduler = backend, scheduler
        bound = f"{limits.max_queue_seconds}s" if limits.max_queue_seconds else "none"
        log.info(
            "model %s ready on %s/%s in %.1fs (%.0f tokens/s per full batch); admission: queue "
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
        if self.backend is not None:
            self.backend.close()
        self.scheduler = self.backend = None

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
        )


class Engine:
    """Composes model runners; `embed()` is the whole inference path, usable without HTTP."""

    def __init__(
        self,
        runners: Sequence[ModelRunner],
        *,
        tokenizer_threads: int = 2,
        request_timeout_s: float = 600.0,
        max_tokenize_chars: int = 32 * 1024 * 1024,
    ) -> None:
        if not runners:
            raise ValueError("the engine needs at least one model")
        self.runners = list(runners)
        self._by_name: dict[str, ModelRunner] = {}
        for runner in self.runners:
            for name in runner.names:
                if name in self._by_name:
                    raise ValueError(f"served model name {name!r} is used twice")
                self._by_name[name] = runner
        self._tokenizer_pool = ThreadPoolExecutor(tokenizer_threads, "embedserve-tokenize")
        self.request_timeout_s = request_timeout_s
        self.max_tokenize_chars = max_tokenize_chars
        self._tokenizing_chars = 0
        self.loaded = False
        self.draining = False

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> Engine:
        """Build (not load) the engine for the configured models."""
        return cls(
            [ModelRunner.from_settings(m, settings.cache_dir) for m in settings.models],
            request_timeout_s=settings.request_timeout_s,
            max_tokenize_chars=settings.max_tokenize_chars,
        )

    async def start(self) -> None:
        """Load and warm up every model off the event loop; then the engine is ready."""
        for runner in self.runners:
            await asyncio.to_thread(runner.load)
        self.loaded = True

    @property
    def ready(self) -> bool:
        """Every model loaded and able to take work."""
        return self.loaded and all(runner.ready for runner in self.runners)

    @property
    def alive(self) -> bool:
        """False once a device thread has died: only a restart heals that."""
        return all(r.scheduler is None or r.scheduler.alive for r in self.runners)

    def unready_reasons(self) -> list[str]:
        """Why the engine is not ready, one line per cause (empty when ready)."""
        if not self.loaded:
            return ["models are loading"]
        reasons = []
        for runner in self.runners:
            why = runner.scheduler.unready_reason if runner.scheduler else "not loaded"
            if why:
                reasons.append(f"model {runner.id!r}: {why}")
        return reasons

    async def stop(self) -> None:
        """Refuse new work, fail what is queued, release the models."""
        self.loaded = False
        self.draining = True
        for runner in self.runners:
            await asyncio.to_thread(runner.close)
        self._tokenizer_pool.shutdown(wait=False, cancel_futures=True)

    def begin_drain(self) -> None:
        """Readiness answers 503 from now on; requests are still served."""
        self.draining = True

    def abort_pending(self) -> None:
        """Refuse new work and answer everything still queued with `NotReady` (shutdown)."""
        for runner in self.runners:
            if runner.scheduler is not None:
                runner.scheduler.abort()

    def served_ids(self) -> list[str]:
        """Every canonical id, in configuration order."""
        return [runner.id for runner in self.runners]

    def models(self) -> list[ModelInfo]:
        """Descriptions of the served models."""
        return [runner.info() for runner in self.runners]

    def resolve(self, name: str | None) -> ModelRunner:
        """The runner serving `name` (an id or alias); `None` is allowed with one model only."""
        if name is None:
            if len(self.runners) == 1:
                return self.runners[0]
            raise InvalidRequest(
                f"`model` is required when several models are served: {self._listing()}",
                param="model",
            )
        runner = self._by_name.get(name)
        if runner is None:
            raise ModelNotFound(
                f"the model {name!r} does not exist; served models: {self._listing()}",
                param="model",
            )
        return runner

    def is_model_ready(self, name: str) -> bool:
        """Readiness of one model (raises `ModelNotFound` for unknown names)."""
        return self.resolve(name).ready and not self.draining

    def _listing(self) -> str:
        return ", ".join(sorted(self._by_name))

    def _ready_runner(self, name: str | None) -> ModelRunner:
        runner = self.resolve(name)
        if runner.scheduler is None:
            raise NotReady(f"the model {runner.id!r} is not ready yet; retry shortly")
        return runner

    def deadline(self) -> float:
        """The event-loop time by which a request arriving now must be answered."""
        return asyncio.get_running_loop().time() + self.request_timeout_s

    async def embed(self, params: EmbedParams, *, deadline: float | None = None) -> EmbedResult:
        """Embed the inputs of one request, in order, batched with everyone else's. Cheap checks
        come first; the request fails with `RequestTimeout` at `deadline` (event-loop time,
        default: now + the request timeout)."""
        loop = asyncio.get_running_loop()
        deadline = self.deadline() if deadline is None else deadline
        runner = self._ready_runner(params.model)
        spec, limits = runner.spec, runner.limits
        count = check_inputs(params.texts, params.token_ids, limits.max_client_batch_size)
        check_dimensions(params.dimensions, spec)
        truncate_to = truncation_limit(params.truncate_prompt_tokens, spec.max_length)
        scheduler = runner.scheduler
        assert scheduler is not None
        scheduler.check_admission(deadline - loop.time())  # a sure 429 costs no tokenization
        try:
            async with asyncio.timeout_at(deadline):
                if params.texts is not None:
                    texts = char_checked(params.texts, runner.max_input_chars, truncate_to)
                    if spec.default_prompt:  # as sentence-transformers does
                        texts = [spec.default_prompt + text for text in texts]
                    token_lists = await self._tokenize(runner, texts, truncate_to=truncate_to)
                else:
                    assert params.token_ids is not None
                    token_lists = checked_token_ids(
                        params.token_ids, spec, limits.max_request_tokens, truncate_to
                    )
                total = check_lengths(token_lists, spec.max_length, limits.max_request_tokens)
                assert count == len(token_lists)
                dimensions = params.dimensions or spec.default_dimensions
                finish = functools.partial(
                    finalize, dimensions=dimensions, normalize=spec.normalize
                )
                vectors = await scheduler.embed(
                    token_lists, finish, remaining_s=deadline - loop.time()
                )
        except TimeoutError:
            runner.request_stats.timeouts += 1
            raise RequestTimeout(
                f"the request was not answered within its {self.request_timeout_s:g}s deadline "
                "(--request-timeout); send fewer inputs per request or retry later"
            ) from None
        except asyncio.CancelledError:
            runner.request_stats.cancelled += 1
            raise
        return EmbedResult(model=params.model or runner.id, vectors=vectors, prompt_tokens=total)

    async def _tokenize(
        self,
        runner: ModelRunner,
        texts: Sequence[str],
        *,
        truncate_to: int | None = None,
        add_special_tokens: bool = True,
    ) -> list[list[int]]:
        """Tokenize off the event loop, within the bound on characters being tokenized."""
        chars = sum(len(text) for text in texts)
        if self._tokenizing_chars and self._tokenizing_chars + chars > self.max_tokenize_chars:
            if runner.scheduler is not None:  # counted with the model's other 429s
                runner.scheduler.stats.rejected_requests += 1
            raise Overloaded(
                f"the tokenizers are busy with {self._tokenizing_chars} characters "
                f"(limit {self.max_tokenize_chars}, --max-tokenize-chars); retry shortly",
                retry_after_s=1,
            )
        encode = functools.partial(
            runner.tokenizer.encode, truncate_to=truncate_to, add_special_tokens=add_special_tokens
        )
        self._tokenizing_chars += chars
        started = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._tokenizer_pool, encode, texts)
        finally:
            self._tokenizing_chars -= chars
            runner.request_stats.tokenization.observe(time.perf_counter() - started)

    async def tokenize(
        self, texts: Sequence[str], *, model: str | None = None, add_special_tokens: bool = True
    ) -> TokenizeResult:
        """Token ids of each text, as the model would see them (no length check), under the
        same input, character and tokenizer limits as `embed`."""
        runner = self.resolve(model)
        check_inputs(texts, None, runner.limits.max_client_batch_size)
        checked = char_checked(texts, runner.max_input_chars, None)
        try:
            async with asyncio.timeout(self.request_timeout_s):
                tokens = await self._tokenize(
                    runner, checked, add_special_tokens=add_special_tokens
                )
        except TimeoutError:
            runner.request_stats.timeouts += 1
            raise RequestTimeout(
                f"tokenizing took longer than the {self.request_timeout_s:g}s request timeout"
            ) from None
        return TokenizeResult(model or runner.id, tokens, runner.spec.max_length)
