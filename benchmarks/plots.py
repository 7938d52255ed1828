"""Charts of the newest `make bench` report (benchmarks/results/<stamp>.json): throughput and
p50/p99 latency against concurrency for embedserve and each peer, the soak's memory, and the
overload runs second by second (once a report has timelines).

    python benchmarks/plots.py                 # the newest report
    python benchmarks/plots.py results/X.json  # a given one

Writes benchmarks/results/plots/*.png (make bench runs it after compare.py).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from embedserve.bench.plots import plot_memory, plot_sweep, plot_timeline
from embedserve.bench.report import Report

RESULTS = Path(__file__).parent / "results"
PLOTS = RESULTS / "plots"
STAMPED = re.compile(r"^\d{8}-\d{6}\.json$")  # a full report, not a -robustness one


def newest_report() -> Path:
    reports = sorted(path for path in RESULTS.glob("*.json") if STAMPED.match(path.name))
    if not reports:
        raise SystemExit("no benchmarks/results/<stamp>.json yet: run `make bench` first")
    return reports[-1]


def newest_robustness(full: Path, result: dict[str, Any]) -> dict[str, Any]:
    """The robustness rows of the newest report that has them: the full one, or a later
    `compare.py --robustness-only` (<stamp>-robustness.json)."""
    alone = sorted(RESULTS.glob("*-robustness.json"))
    if alone and alone[-1].name[:15] > full.name[:15]:
        robustness: dict[str, Any] = json.loads(alone[-1].read_text(encoding="utf-8"))
        return robustness.get("robustness") or {}
    return result.get("robustness") or {}


def sweeps(result: dict[str, Any], workload: str) -> dict[str, list[Report]]:
    """Each server's closed-loop rows of one workload, as reports."""
    found: dict[str, list[Report]] = {}
    for server in ("embedserve", "infinity"):
        rows = (result.get(server) or {}).get("rows", {})
        chosen = [Report.from_dict(row) for key, row in rows.items() if key.startswith(workload)]
        if len(chosen) > 1:
            found[server] = chosen
    return found


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else newest_report()
    result = json.loads(source.read_text(encoding="utf-8"))
    written = []
    series = sweeps(result, "mixed c=")
    if series:
        title = f"closed loop, mixed texts, one per request ({source.name})"
        written.append(plot_sweep(series, PLOTS / "throughput-latency.png", title))
    soak = result.get("soak")
    if soak and soak.get("rss_mb"):
        report = Report.from_dict(soak)
        written.append(plot_memory(report, PLOTS / "soak-rss.png", report.label))
    overload = newest_robustness(source, result).get("overload") or []
    for index, run in enumerate(overload):
        report = Report.from_dict(run["report"])
        if report.timeline:
            path = PLOTS / f"overload-{index + 1}.png"
            written.append(plot_timeline(report, path, report.label))
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
