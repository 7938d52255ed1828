"""int8/uint8 ranges of one model: the per-dimension minima and maxima of its vectors over a
calibration sample (the built-in multilingual one, or a file the models file names). The sample
is embedded once, on the first int8/uint8 request, by the model's own scheduler, and its raw
vectors are cached on disk beside the exports; ranges follow each request's post-processing
(`dimensions`, `normalize`). Fixed ranges from a file replace all of it."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.resources
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import numpy as np

from embedserve.arrays import FloatArray
from embedserve.backends.export_cache import build_cached, set_aside
from embedserve.backends.onnx_export import model_content_hash
from embedserve.errors import ModelLoadError
from embedserve.models import ModelSpec
from embedserve.postprocess import PostProcess
from embedserve.prompts import resolve_prompt

log = logging.getLogger(__name__)
SAMPLE_FORMAT_VERSION = "1"  # bump when what the cached vectors hold changes
SampleEmbedder = Callable[[Sequence[str]], Awaitable[FloatArray]]


def builtin_sample() -> list[str]:
    """The built-in sample: 480 texts in 26 languages, from queries to paragraphs and code."""
    text = importlib.resources.files("embedserve").joinpath("data", "calibration.txt")
    return text_lines(text.read_text(encoding="utf-8"))


def text_lines(text: str) -> list[str]:
    """The non-blank lines of `text`, stripped: one calibration text each."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def sample_texts(path: Path | None) -> list[str]:
    """The texts of a calibration file (one per line), or the built-in sample."""
    if path is None:
        return builtin_sample()
    try:
        texts = text_lines(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ModelLoadError(f"cannot read the calibration texts {path}: {error}") from error
    if len(texts) < 2:
        raise ModelLoadError(
            f"the calibration texts {path} hold {len(texts)} non-blank line(s); int8 ranges "
            "need many texts (hundreds, like what the model will serve)"
        )
    return texts


def load_ranges(path: Path, width: int) -> FloatArray:
    """Fixed ranges from `.npy` or JSON (`[[minima...], [maxima...]]`), one per dimension."""
    try:
        if path.suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        else:
            values = np.asarray(json.loads(path.read_text(encoding="utf-8")), dtype=np.float32)
        ranges = np.asarray(values, dtype=np.float32)
    except (OSError, ValueError, TypeError) as error:
        raise ModelLoadError(f"cannot read the int8 ranges {path}: {error}") from error
    if ranges.shape != (2, width):
        raise ModelLoadError(
            f"the int8 ranges {path} have shape {ranges.shape}; expected (2, {width}): the "
            "minima, then the maxima, of each dimension of the model's vectors"
        )
    if not np.isfinite(ranges).all() or (ranges[0] > ranges[1]).any():
        raise ModelLoadError(f"the int8 ranges {path} must be finite, each minimum <= its maximum")
    return ranges


def ranges_of(vectors: FloatArray) -> FloatArray:
    """(2, dim): each dimension's minimum and maximum over `vectors`."""
    return np.vstack((vectors.min(axis=0), vectors.max(axis=0))).astype(np.float32)


class Calibration:
    """The int8/uint8 ranges of one served model (see the module docstring)."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        cache_dir: Path,
        runtime: str,
        texts_path: Path | None = None,
        ranges_path: Path | None = None,
    ) -> None:
        self.spec = spec
        self.cache_dir = cache_dir
        self.runtime = runtime  # backend, precision, device: the vectors depend on them
        self.fixed = load_ranges(ranges_path, spec.output_dimensions) if ranges_path else None
        self.texts = [] if self.fixed is not None else sample_texts(texts_path)
        self._vectors: FloatArray | None = None
        self._task: asyncio.Future[FloatArray] | None = None
        self._ranges: dict[PostProcess, FloatArray] = {}

    async def ranges(self, finish: PostProcess, width: int, embed: SampleEmbedder) -> FloatArray:
        """(2, width) ranges for vectors post-processed by `finish`: fixed ones cut to `width`,
        or the calibration sample's, post-processed the same way."""
        if self.fixed is not None:
            return self.fixed[:, :width]
        found = self._ranges.get(finish)
        if found is None:
            found = self._ranges[finish] = ranges_of(finish(await self.sample_vectors(embed)))
        return found

    async def sample_vectors(self, embed: SampleEmbedder) -> FloatArray:
        """The sample's raw vectors: read from the cache, or embedded once by `embed` (one
        shared computation, which outlives a caller that gives up)."""
        if self._vectors is None:
            if self._task is None or (self._task.done() and not _succeeded(self._task)):
                self._task = asyncio.ensure_future(self._compute(embed))
            self._vectors = await asyncio.shield(self._task)
        return self._vectors

    def cache_path(self) -> Path:
        """Where the sample's raw vectors are cached: keyed by the model's files, its Dense
        heads, how it runs, its pooling, length and default prompt, and the sample."""
        spec = self.spec
        parts = [
            SAMPLE_FORMAT_VERSION,
            model_content_hash(spec.path),
            *(model_content_hash(folder) for folder in spec.dense_dirs),
            self.runtime,
            spec.pooling.value,
            str(spec.max_length),
            resolve_prompt(spec, None, None),
            hashlib.sha256("\n".join(self.texts).encode()).hexdigest(),
        ]
        key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]
        return self.cache_dir / "calibration" / key / "vectors.npy"

    async def _compute(self, embed: SampleEmbedder) -> FloatArray:
        path = await asyncio.to_thread(self.cache_path)
        cached = await asyncio.to_thread(self._read, path)
        if cached is not None:
            return cached
        log.info(
            "calibrating int8/uint8 ranges of %s on %d texts (first such request; cached in %s)",
            self.spec.path,
            len(self.texts),
            path.parent,
        )
        vectors = await embed(self.texts)
        await asyncio.to_thread(build_cached, path, lambda target: np.save(target, vectors))
        return vectors

    def _read(self, path: Path) -> FloatArray | None:
        """The cached vectors, or None (a damaged file is set aside, to be rebuilt)."""
        if not path.is_file():
            return None
        expected = (len(self.texts), self.spec.output_dimensions)
        try:
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape != expected or not np.isfinite(vectors).all():
                raise ValueError(f"shape {vectors.shape} or values are not as expected")
        except (OSError, ValueError) as error:
            set_aside(path.parent, f"{path.name} cannot be used ({error})")
            return None
        return np.asarray(vectors, dtype=np.float32)


def _succeeded(task: asyncio.Future[FloatArray]) -> bool:
    return not task.cancelled() and task.exception() is None
