"""`ModelRunner`: settings to a loaded model (fake backend), the per-model limits in force."""

from __future__ import annotations

from pathlib import Path

from embedserve.engine import Engine
from embedserve.settings import BatchingLimits, ModelSettings, settings_from_sources


async def test_max_batch_size_reaches_the_scheduler(tmp_path: Path) -> None:
    (settings,) = settings_from_sources({"backend": "fake", "max_batch_size": 2}, {}).models
    assert settings.limits == BatchingLimits(max_batch_size=2)
    async with Engine.from_models(settings, cache_dir=tmp_path) as engine:
        result = await engine.embed([f"text {i}" for i in range(5)])
        stats = engine.runners[0].scheduler.stats  # type: ignore[union-attr]
    assert result.vectors.shape == (5, 384)
    assert stats.items == 5 and stats.batches >= 3  # at most 2 inputs per forward batch


async def test_auto_values_are_resolved_from_the_model_and_device(tmp_path: Path) -> None:
    settings = ModelSettings(backend="fake", max_length=32)
    async with Engine.from_models(settings, cache_dir=tmp_path) as engine:
        runner = engine.runners[0]
        assert runner.spec.max_length == 32
        assert runner.max_input_chars == 64 * 32  # auto: 64 characters per token
        assert runner.backend_name == "fake" and runner.device == "cpu"
