"""The bench charts draw what the reports say: the sweep's points in concurrency order, one
throughput line and two latency lines per series, and a soak's RSS samples; PNG files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from embedserve.bench.plots import (
    plot_memory,
    plot_sweep,
    plot_timeline,
    sweep_figure,
    sweep_points,
)
from embedserve.bench.report import Report, Sample, summarize

PNG = b"\x89PNG\r\n\x1a\n"


def report(
    concurrency: int, inputs_per_s: float, p50: float, rss: list[float] | None = None
) -> Report:
    return Report(
        label=f"c={concurrency}",
        settings={"concurrency": concurrency, "rss_every": 100},
        duration_s=1.0,
        requests=10,
        ok=10,
        errors={},
        requests_per_s=inputs_per_s,
        inputs_per_s=inputs_per_s,
        tokens_per_s=10 * inputs_per_s,
        latency_ms={"p50": p50, "p99": 2 * p50},
        rss_mb=rss or [],
    )


def test_points_follow_concurrency() -> None:
    points = sweep_points([report(8, 80.0, 30.0), report(1, 20.0, 10.0), report(32, 90.0, 120.0)])
    assert points == {
        "concurrency": [1.0, 8.0, 32.0],
        "inputs_per_s": [20.0, 80.0, 90.0],
        "p50_ms": [10.0, 30.0, 120.0],
        "p99_ms": [20.0, 60.0, 240.0],
    }


def test_sweep_chart_draws_each_series(tmp_path: Path) -> None:
    series = {
        "embedserve": [report(1, 20.0, 10.0), report(8, 80.0, 30.0)],
        "peer": [report(1, 15.0, 12.0), report(8, 50.0, 60.0)],
    }
    figure = sweep_figure(series, "title")
    throughput, latency = figure.axes
    assert [list(line.get_ydata()) for line in throughput.lines] == [[20.0, 80.0], [15.0, 50.0]]
    assert [line.get_label() for line in latency.lines] == [
        "embedserve p50", "embedserve p99", "peer p50", "peer p99",
    ]  # fmt: skip
    assert list(latency.lines[3].get_ydata()) == [24.0, 120.0]
    written = plot_sweep(series, tmp_path / "charts" / "sweep.png", "title")
    assert written.read_bytes().startswith(PNG) and written.stat().st_size > 10_000


def test_memory_chart(tmp_path: Path) -> None:
    soak = report(8, 80.0, 30.0, rss=[300.0, 301.5, 301.0])
    written = plot_memory(soak, tmp_path / "soak.png", "soak")
    assert written.read_bytes().startswith(PNG)


def test_without_matplotlib_the_message_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(RuntimeError, match=r"embedserve\[bench\]"):
        plot_sweep({"x": [report(1, 1.0, 1.0)]}, tmp_path / "x.png", "x")


def test_timeline_counts_each_second_by_outcome(tmp_path: Path) -> None:
    start = 1000.0  # perf_counter seconds; the first request starts here
    samples = [
        Sample(0.5, 200, 1, 5, finished_at=start + 0.5),
        Sample(0.2, 200, 1, 5, finished_at=start + 0.9),
        Sample(0.1, 429, 0, 0, finished_at=start + 1.2),
        Sample(0.3, "timeout", 0, 0, finished_at=start + 3.1),
        Sample(0.4, 200, 1, 5, finished_at=start + 3.5),
        Sample(0.4, 200, 1, 5),  # untimed: left out of the timeline only
    ]
    made = summarize("run", samples, 4.0, {"concurrency": 2})
    assert made.timeline == [
        {"t": 0, "ok": 2, "refused": 0, "failed": 0, "p50_ms": 350.0},
        {"t": 1, "ok": 0, "refused": 1, "failed": 0, "p50_ms": None},
        {"t": 2, "ok": 0, "refused": 0, "failed": 0, "p50_ms": None},
        {"t": 3, "ok": 1, "refused": 0, "failed": 1, "p50_ms": 400.0},
    ]
    assert made.ok == 4  # the summary still counts every sample
    written = plot_timeline(made, tmp_path / "timeline.png", "overload")
    assert written.read_bytes().startswith(PNG)
    assert Report.from_dict(made.to_dict()) == made
