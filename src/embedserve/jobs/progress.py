"""The job's progress bar (tqdm, on stderr): texts done of the total, texts/s, tokens/s, ETA."""

from __future__ import annotations

import time

from tqdm import tqdm


class Progress:
    """Counts texts and tokens; draws nothing with `quiet`."""

    def __init__(self, total: int | None, *, quiet: bool = False) -> None:
        self._bar = tqdm(total=total, unit="text", disable=quiet, smoothing=0.1, dynamic_ncols=True)
        self._started = time.perf_counter()
        self._tokens = 0

    def start_clock(self) -> None:
        """Rates count from now (the model is loaded)."""
        self._started = time.perf_counter()
        self._bar.reset(total=self._bar.total)

    def advance(self, texts: int, tokens: int) -> None:
        """`texts` more embedded, holding `tokens` tokens."""
        self._tokens += tokens
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        self._bar.set_postfix_str(f"{self._tokens / elapsed:,.0f} tokens/s", refresh=False)
        self._bar.update(texts)

    @property
    def elapsed_s(self) -> float:
        """Seconds since the clock started."""
        return time.perf_counter() - self._started

    def skipped(self, texts: int) -> None:
        """`texts` found already done (a resumed run)."""
        self._bar.update(texts)

    def close(self) -> None:
        """Finish the bar."""
        self._bar.close()
