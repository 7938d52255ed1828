"""Calibration: the built-in sample, fixed ranges files, one shared computation of the sample's
vectors, the disk cache (and a damaged one set aside), ranges that follow post-processing."""

from __future__ import annotations

import asyncio
import json
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from embedserve.arrays import FloatArray
from embedserve.calibration import Calibration, builtin_sample, load_ranges, sample_texts
from embedserve.errors import ModelLoadError
from embedserve.models import ModelSpec
from embedserve.postprocess import PostProcess, l2_normalize

DIM = 384


class CountingEmbedder:
    """Deterministic vectors per text (a hash seed), counting the texts it embeds."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls = 0
        self.delay_s = delay_s

    async def __call__(self, texts: Sequence[str]) -> FloatArray:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(DIM) for t in texts]
        return np.asarray(rows, dtype=np.float32) * 3


def test_builtin_sample_is_many_texts_in_many_scripts() -> None:
    texts = builtin_sample()
    assert len(texts) >= 400 and len(set(texts)) == len(texts)
    scripts = {
        unicodedata.name(ch, "?").split()[0] for text in texts for ch in text if ch.isalpha()
    }
    assert {"LATIN", "CYRILLIC", "ARABIC", "CJK", "HANGUL", "DEVANAGARI", "GREEK"} <= scripts


def test_sample_texts_file(tmp_path: Path) -> None:
    path = tmp_path / "sample.txt"
    path.write_text("one text\n\n  another text  \n", encoding="utf-8")
    assert sample_texts(path) == ["one text", "another text"]
    path.write_text("alone\n", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="1 non-blank line"):
        sample_texts(path)
    with pytest.raises(ModelLoadError, match="cannot read"):
        sample_texts(tmp_path / "missing.txt")


def test_ranges_files(tmp_path: Path) -> None:
    ranges = np.vstack((-np.ones(4), np.ones(4))).astype(np.float32)
    np.save(tmp_path / "r.npy", ranges)
    (tmp_path / "r.json").write_text(json.dumps(ranges.tolist()), encoding="utf-8")
    assert np.array_equal(load_ranges(tmp_path / "r.npy", 4), ranges)
    assert np.array_equal(load_ranges(tmp_path / "r.json", 4), ranges)
    with pytest.raises(ModelLoadError, match=r"expected \(2, 8\)"):
        load_ranges(tmp_path / "r.npy", 8)
    (tmp_path / "bad.json").write_text("[[1, 0], [0, 1]]", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="minimum <= its maximum"):
        load_ranges(tmp_path / "bad.json", 2)
    (tmp_path / "nan.json").write_text("[[NaN, 0], [1, 1]]", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="finite"):
        load_ranges(tmp_path / "nan.json", 2)
    (tmp_path / "text.json").write_text("not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_ranges(tmp_path / "text.json", 2)


def calibration(spec: ModelSpec, cache: Path, **kwargs: Path) -> Calibration:
    return Calibration(spec, cache_dir=cache, runtime="test", **kwargs)


async def test_computed_once_for_concurrent_requests_then_cached_on_disk(
    bundled_spec: ModelSpec, tmp_path: Path
) -> None:
    embed = CountingEmbedder(delay_s=0.05)
    first = calibration(bundled_spec, tmp_path)
    plain = PostProcess(dimensions=None, normalize=False)
    results = await asyncio.gather(*(first.ranges(plain, DIM, embed) for _ in range(5)))
    assert embed.calls == 1
    vectors = await embed(first.texts)
    expected = np.vstack((vectors.min(axis=0), vectors.max(axis=0)))
    assert all(np.array_equal(result, expected) for result in results)
    assert first.cache_path().is_file()

    again = calibration(bundled_spec, tmp_path)  # a restart reads the cache
    idle = CountingEmbedder()
    assert np.array_equal(await again.ranges(plain, DIM, idle), expected)
    assert idle.calls == 0


async def test_ranges_follow_the_post_processing(bundled_spec: ModelSpec, tmp_path: Path) -> None:
    embed = CountingEmbedder()
    cal = calibration(bundled_spec, tmp_path)
    vectors = await cal.sample_vectors(embed)
    short = PostProcess(dimensions=64, normalize=True)
    ranges = await cal.ranges(short, 64, embed)
    cut = l2_normalize(vectors[:, :64])
    assert np.array_equal(ranges, np.vstack((cut.min(axis=0), cut.max(axis=0))))
    assert embed.calls == 1


async def test_a_caller_that_gives_up_does_not_stop_the_computation(
    bundled_spec: ModelSpec, tmp_path: Path
) -> None:
    embed = CountingEmbedder(delay_s=0.2)
    cal = calibration(bundled_spec, tmp_path)
    plain = PostProcess(dimensions=None, normalize=False)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await cal.ranges(plain, DIM, embed)
    await cal.ranges(plain, DIM, embed)
    assert embed.calls == 1


async def test_a_failed_computation_is_retried(bundled_spec: ModelSpec, tmp_path: Path) -> None:
    async def broken(texts: Sequence[str]) -> FloatArray:
        raise RuntimeError("the model failed")

    cal = calibration(bundled_spec, tmp_path)
    plain = PostProcess(dimensions=None, normalize=False)
    with pytest.raises(RuntimeError, match="the model failed"):
        await cal.ranges(plain, DIM, broken)
    embed = CountingEmbedder()
    await cal.ranges(plain, DIM, embed)
    assert embed.calls == 1


async def test_a_damaged_cache_is_set_aside_and_rebuilt(
    bundled_spec: ModelSpec, tmp_path: Path
) -> None:
    cal = calibration(bundled_spec, tmp_path)
    path = cal.cache_path()
    path.parent.mkdir(parents=True)
    np.save(path, np.zeros((3, DIM), dtype=np.float32))  # wrong number of rows
    embed = CountingEmbedder()
    vectors = await cal.sample_vectors(embed)
    assert embed.calls == 1 and vectors.shape == (len(cal.texts), DIM)
    assert np.load(path).shape == vectors.shape
    assert list(path.parent.parent.glob("*.corrupt-*"))


async def test_the_cache_key_names_the_sample_and_runtime(
    bundled_spec: ModelSpec, tmp_path: Path
) -> None:
    texts = tmp_path / "mine.txt"
    texts.write_text("first text\nsecond text\n", encoding="utf-8")
    builtin = calibration(bundled_spec, tmp_path)
    own = calibration(bundled_spec, tmp_path, texts_path=texts)
    other_runtime = Calibration(bundled_spec, cache_dir=tmp_path, runtime="other")
    paths = {builtin.cache_path(), own.cache_path(), other_runtime.cache_path()}
    assert len(paths) == 3
    assert own.texts == ["first text", "second text"]


async def test_fixed_ranges_replace_calibration(bundled_spec: ModelSpec, tmp_path: Path) -> None:
    ranges = np.vstack((-np.ones(DIM), np.ones(DIM))).astype(np.float32)
    np.save(tmp_path / "ranges.npy", ranges)
    cal = calibration(bundled_spec, tmp_path, ranges_path=tmp_path / "ranges.npy")
    embed = CountingEmbedder()
    got = await cal.ranges(PostProcess(dimensions=128, normalize=True), 128, embed)
    assert np.array_equal(got, ranges[:, :128]) and embed.calls == 0 and not cal.texts
