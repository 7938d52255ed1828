"""PNG charts of bench reports (matplotlib, `pip install 'embedserve[bench]'`): throughput and
p50/p99 latency against concurrency, one line per series; a run second by second (overload);
and memory over a soak."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from embedserve.bench.report import Report

Series = Mapping[str, Sequence[Report]]  # a name (server, backend) -> its runs at each concurrency


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'embedserve[bench]'") from None
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def sweep_points(reports: Sequence[Report]) -> dict[str, list[float]]:
    """What the sweep chart draws for one series, by concurrency (ascending)."""
    ordered = sorted(reports, key=lambda report: int(report.settings["concurrency"]))
    return {
        "concurrency": [float(report.settings["concurrency"]) for report in ordered],
        "inputs_per_s": [report.inputs_per_s for report in ordered],
        "p50_ms": [report.latency_ms["p50"] for report in ordered],
        "p99_ms": [report.latency_ms["p99"] for report in ordered],
    }


def plot_sweep(series: Series, path: Path, title: str) -> Path:
    """Throughput (left) and p50/p99 latency (right, log scale) against concurrency."""
    return _save(sweep_figure(series, title), path)


def sweep_figure(series: Series, title: str) -> Any:
    """The sweep chart as a matplotlib Figure (closed by `_save`)."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for name, reports in series.items():
        points = sweep_points(reports)
        left.plot(points["concurrency"], points["inputs_per_s"], marker="o", label=name)
        drawn = right.plot(points["concurrency"], points["p50_ms"], marker="o", label=f"{name} p50")
        right.plot(
            points["concurrency"],
            points["p99_ms"],
            marker="^",
            linestyle="--",
            color=drawn[0].get_color(),
            label=f"{name} p99",
        )
    ticks = sorted({c for reports in series.values() for c in sweep_points(reports)["concurrency"]})
    for axes, label in ((left, "texts/s"), (right, "latency, ms")):
        axes.set_xscale("log", base=2)
        axes.set_xticks(ticks, [str(int(tick)) for tick in ticks])
        axes.set_xlabel("concurrent clients (closed loop)")
        axes.set_ylabel(label)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
    right.set_yscale("log")
    left.set_ylim(bottom=0)
    figure.suptitle(title)
    return figure


def plot_memory(report: Report, path: Path, title: str) -> Path:
    """The server's RSS sampled through a soak, against requests sent."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
    every = int(report.settings.get("rss_every") or 1)
    requests = [every * (index + 1) for index in range(len(report.rss_mb))]
    axes.plot(requests, report.rss_mb, marker=".")
    axes.set_xlabel("requests")
    axes.set_ylabel("server RSS, MiB")
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    figure.suptitle(title)
    return _save(figure, path)


def plot_timeline(report: Report, path: Path, title: str) -> Path:
    """A run second by second: answers per second by outcome (top), p50 latency (bottom)."""
    plt = _pyplot()
    rows = report.timeline
    figure, (counts, latency) = plt.subplots(
        2, 1, figsize=(9, 5.2), sharex=True, constrained_layout=True
    )
    seconds = [row["t"] for row in rows]
    for key, color in (("ok", "tab:green"), ("refused", "tab:orange"), ("failed", "tab:red")):
        counts.step(seconds, [row[key] for row in rows], where="post", label=key, color=color)
    counts.set_ylabel("answers per second")
    counts.legend(fontsize=8)
    latency.plot(
        [row["t"] for row in rows if row["p50_ms"] is not None],
        [row["p50_ms"] for row in rows if row["p50_ms"] is not None],
        color="tab:blue",
    )
    latency.set_ylabel("p50 latency of the ok, ms")
    latency.set_xlabel("seconds into the run")
    for axes in (counts, latency):
        axes.grid(True, alpha=0.3)
        axes.set_ylim(bottom=0)
    figure.suptitle(title)
    return _save(figure, path)


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    _pyplot().close(figure)
    return path
