"""The engine: resolve a model, check and tokenize inputs, queue them on the model's scheduler,
post-process the vectors. No HTTP: the routes, the library API and batch jobs all call it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from embedserve.deadlines import answered_by
from embedserve.errors import (
    InvalidRequest,
    ModelNotFound,
    NotReady,
    RequestTimeout,
)
from embedserve.input_checks import (
    char_checked,
    check_dimensions,
    check_inputs,
)
from embedserve.output_dtypes import CALIBRATED, check_output_dtype, convert
from embedserve.params import EmbedParams, EmbedResult, TokenizeResult
from embedserve.postprocess import PostProcess
from embedserve.prompts import prompt_for, resolve_prompt
from embedserve.quantization import request_ranges
from embedserve.request_tokens import count_inputs, request_tokens
from embedserve.result_cache import embed_cached
from embedserve.runner import ModelInfo, ModelRunner
from embedserve.settings import ModelSettings, ServerSettings, resolve_cache_dir
from embedserve.settings.sources import ModelSource, model_settings_for
from embedserve.tokenizer_pool import TokenizerPool
from embedserve.truncation import resolve_truncation

__all__ = ["EmbedParams", "EmbedResult", "Engine", "ModelSource", "TokenizeResult"]


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
        self.tokenizers = TokenizerPool(tokenizer_threads, max_tokenize_chars)
        self.request_timeout_s = request_timeout_s
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

    @classmethod
    def from_models(
        cls,
        models: ModelSource | Iterable[ModelSource] = None,
        *,
        cache_dir: Path | None = None,
        request_timeout_s: float = 600.0,
        **model_settings: Any,
    ) -> Engine:
        """Build (not load) an engine serving `models`: model directories, `ModelSettings`, or
        None for the bundled model. `model_settings` (any `ModelSettings` field, or a
        `BatchingLimits` one) apply to every directory given by path.

        >>> async with Engine.from_models() as engine:
        ...     result = await engine.embed(["a query"])
        """
        sources = (
            [models]
            if models is None or isinstance(models, str | Path | ModelSettings)
            else list(models)
        )
        settings = [model_settings_for(source, model_settings) for source in sources]
        return cls(
            [ModelRunner.from_settings(s, resolve_cache_dir(cache_dir)) for s in settings],
            request_timeout_s=request_timeout_s,
        )

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

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
        self.tokenizers.shutdown()

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

    async def embed(self, texts: str | Sequence[str] | None = None, **request: Any) -> EmbedResult:
        """Embed texts with `model` (optional with one model served): `result.vectors` is an
        (n, dim) float32 array in input order. `request` holds any other `EmbedParams` field:
        `token_ids`, `model`, `dimensions`, `truncate_prompt_tokens`, `input_type`,
        `prompt_name`, `normalize`."""
        params = EmbedParams(texts=[texts] if isinstance(texts, str) else texts, **request)
        return await self.embed_params(params)

    async def embed_params(
        self, params: EmbedParams, *, deadline: float | None = None
    ) -> EmbedResult:
        """Embed the inputs of one request, in order, batched with everyone else's. Cheap checks
        come first; the request fails with `RequestTimeout` at `deadline` (event-loop time,
        default: now + the request timeout)."""
        loop = asyncio.get_running_loop()
        deadline = self.deadline() if deadline is None else deadline
        runner = self._ready_runner(params.model)
        spec, limits = runner.spec, runner.limits
        if spec.score_head is not None:
            raise InvalidRequest(
                f"the model {runner.id!r} is a reranker (a cross-encoder): it scores pairs on "
                "/v1/rerank and /score, and gives no embeddings",
                param="model",
            )
        count = check_inputs(params.texts, params.token_ids, limits.max_client_batch_size)
        check_dimensions(params.dimensions, spec)
        dtypes = [check_output_dtype(d) for d in params.output_dtypes or (params.output_dtype,)]
        cut = resolve_truncation(
            params.truncate,
            params.truncate_prompt_tokens,
            spec.max_length,
            runner.truncate,
            runner.chunk_overlap,
        )
        prompt = prompt_for(spec, params)
        scheduler = runner.scheduler
        assert scheduler is not None
        scheduler.check_admission(deadline - loop.time())  # a sure 429 costs no tokenization
        async with answered_by(deadline, runner, self.request_timeout_s):
            tokens = await request_tokens(self.tokenizers, runner, params, cut, prompt)
            assert count == count_inputs(tokens)
            finish = PostProcess.of(spec, params.dimensions, params.normalize)
            vectors = await embed_cached(
                scheduler,
                runner.result_cache,
                tokens.token_lists,
                tokens.pooled(finish),
                remaining_s=deadline - loop.time(),
            )
            ranges = None
            if any(dtype in CALIBRATED for dtype in dtypes):
                ranges = await request_ranges(
                    self.tokenizers, runner, finish, vectors.shape[1], self.request_timeout_s
                )
        converted = {dtype: convert(vectors, dtype, ranges) for dtype in dtypes}
        return EmbedResult(
            model=params.model or runner.id,
            vectors=converted[dtypes[0]],
            prompt_tokens=tokens.total,
            dtype=dtypes[0],
            by_dtype=converted,
        )

    async def tokenize(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        add_special_tokens: bool = True,
        input_type: str | None = None,
        prompt_name: str | None = None,
    ) -> TokenizeResult:
        """Token ids of each text as the model would see them, its prompt included (no length
        check), under the same input, character and tokenizer limits as `embed`."""
        runner = self.resolve(model)
        check_inputs(texts, None, runner.limits.max_client_batch_size)
        prompt = resolve_prompt(runner.spec, input_type, prompt_name)
        checked = [prompt + text for text in char_checked(texts, runner.max_input_chars, None)]
        try:
            async with asyncio.timeout(self.request_timeout_s):
                tokens = await self.tokenizers.encode(
                    runner, checked, add_special_tokens=add_special_tokens
                )
        except TimeoutError:
            runner.request_stats.timeouts += 1
            raise RequestTimeout(
                f"tokenizing took longer than the {self.request_timeout_s:g}s request timeout"
            ) from None
        return TokenizeResult(model or runner.id, tokens, runner.spec.max_length)
