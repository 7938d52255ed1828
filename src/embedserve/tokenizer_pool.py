"""Tokenizing off the event loop, in a few threads, within a bound on the characters being
tokenized at once over all requests (`--max-tokenize-chars`; a request past it gets 429)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from embedserve.errors import Overloaded
from embedserve.runner import ModelRunner

T = TypeVar("T")
Item = TypeVar("Item")


class TokenizerPool:
    """The engine's tokenizer threads, shared by every model."""

    def __init__(self, threads: int, max_chars: int) -> None:
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, "embedserve-tokenize")
        self.max_chars = max_chars
        self.chars_in_flight = 0

    async def encode(
        self,
        runner: ModelRunner,
        texts: Sequence[str],
        *,
        truncate_to: int | None = None,
        add_special_tokens: bool = True,
        keep_end: bool = False,
    ) -> list[list[int]]:
        """Token ids of `texts` with `runner`'s tokenizer (see `TextTokenizer.encode`)."""
        encode = functools.partial(
            runner.tokenizer.encode,
            truncate_to=truncate_to,
            add_special_tokens=add_special_tokens,
            keep_end=keep_end,
        )
        return await self._run(runner, texts, encode, sum(len(text) for text in texts))

    async def encode_pairs(
        self,
        runner: ModelRunner,
        pairs: Sequence[tuple[str, str]],
        *,
        keep_end: bool = False,
        cut: bool = True,
        max_document_tokens: int | None = None,
    ) -> list[list[int]]:
        """(query, document) pairs with only the document cut (`TextTokenizer.encode_pairs`),
        all in one batch."""
        encode = functools.partial(
            runner.tokenizer.encode_pairs,
            max_length=runner.spec.max_length,
            keep_end=keep_end,
            cut=cut,
            max_document_tokens=max_document_tokens,
        )
        queries = {query for query, _ in pairs}  # each tokenized once
        chars = sum(map(len, queries)) + sum(len(document) for _, document in pairs)
        return await self._run(runner, pairs, encode, chars)

    async def encode_windows(
        self, runner: ModelRunner, texts: Sequence[str], overlap: int
    ) -> list[list[list[int]]]:
        """Each text's tokens in windows of the model's length (`TextTokenizer.encode_windows`)."""
        windows = functools.partial(
            runner.tokenizer.encode_windows, window=runner.spec.max_length, overlap=overlap
        )
        return await self._run(runner, texts, windows, sum(len(text) for text in texts))

    async def _run(
        self,
        runner: ModelRunner,
        items: Sequence[Item],
        work: Callable[[Sequence[Item]], T],
        chars: int,
    ) -> T:
        """`work(items)`, of `chars` characters, in a tokenizer thread; `Overloaded` when the
        bound is full (an idle pool takes any request, however large)."""
        if self.chars_in_flight and self.chars_in_flight + chars > self.max_chars:
            if runner.scheduler is not None:  # counted with the model's other 429s
                runner.scheduler.stats.rejected_requests += 1
            raise Overloaded(
                f"the tokenizers are busy with {self.chars_in_flight} characters "
                f"(limit {self.max_chars}, --max-tokenize-chars); retry shortly",
                retry_after_s=1,
            )
        self.chars_in_flight += chars
        started = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, work, items)
        finally:
            self.chars_in_flight -= chars
            runner.request_stats.tokenization.observe(time.perf_counter() - started)

    def shutdown(self) -> None:
        """Stop the threads; queued tokenizations are cancelled."""
        self._pool.shutdown(wait=False, cancel_futures=True)
