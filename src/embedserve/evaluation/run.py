"""One `embedserve eval`: the tasks through the served URL and/or in-process, each run's MTEB
result files under its own folder, and the main scores side by side."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import mteb
import orjson
from mteb.abstasks import AbsTask
from mteb.results import TaskResult

from embedserve.evaluation.client import ClientOptions, EmbeddingsClient
from embedserve.evaluation.encoders import InProcessEncoder, ServedEncoder
from embedserve.evaluation.tasks import resolve_tasks
from embedserve.library import Embedder

logger = logging.getLogger(__name__)
IN_PROCESS = "in-process"
BUNDLED_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class EvalOptions:
    """What `embedserve eval` was asked for."""

    tasks: tuple[str, ...]
    output: Path
    client: ClientOptions | None = None  # None: no server, in-process only
    reference: str | None = None  # "in-process", a results folder, or None
    model_dir: Path | None = None  # the in-process model (None: the bundled one)
    engine_settings: dict[str, Any] = field(default_factory=dict)
    cache_dir: Path | None = None
    datasets: Path | None = None
    resume: bool = False
    quiet: bool = False


@dataclass
class EvalReport:
    """Main scores per task and run ("server", "in-process", "reference")."""

    tasks: list[tuple[str, str]]  # (task name, main score name)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # run → task → score

    def differences(self) -> dict[str, float]:
        """First run minus second, per task, when two runs were made."""
        if len(self.scores) < 2:
            return {}
        first, second = list(self.scores.values())[:2]
        return {name: first[name] - second[name] for name, _ in self.tasks}

    def max_difference(self) -> float:
        """The largest |difference|; 0 with one run, infinite if a score is missing."""
        values = [abs(value) for value in self.differences().values()]
        return math.inf if any(map(math.isnan, values)) else max(values, default=0.0)

    def table(self) -> str:
        """A Markdown table: task, main score, one column per run, the difference."""
        runs = list(self.scores)
        header = ["task", "main score", *runs] + (["difference"] if len(runs) > 1 else [])
        rows = [header, ["---"] * len(header)]
        differences = self.differences()
        for name, metric in self.tasks:
            row = [name, metric, *(_number(self.scores[run].get(name)) for run in runs)]
            if differences:
                row.append(f"{differences[name]:+.2e}")
            rows.append(row)
        return "\n".join("| " + " | ".join(row) + " |" for row in rows)

    def to_json(self) -> bytes:
        """The summary `eval` writes beside the result folders."""
        tasks = [
            {"task": name, "main_score": metric}
            | {run: self.scores[run].get(name) for run in self.scores}
            | ({"difference": self.differences()[name]} if len(self.scores) > 1 else {})
            for name, metric in self.tasks
        ]
        return orjson.dumps({"runs": list(self.scores), "tasks": tasks}, option=orjson.OPT_INDENT_2)


def _number(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.6f}"


def run_eval(options: EvalOptions) -> EvalReport:
    """Evaluate, write MTEB's result files under `output/<run>/` and a summary; the report."""
    tasks = resolve_tasks(options.tasks, options.datasets)
    report = EvalReport([(task.metadata.name, task.metadata.main_score) for task in tasks])
    served_name = None
    if options.client is not None:
        encoder = ServedEncoder(EmbeddingsClient(options.client), quiet=options.quiet)
        served_name = encoder.client.model
        report.scores["server"] = _evaluate(encoder, tasks, options, "server")
    if options.client is None or options.reference == IN_PROCESS:
        name = served_name or (options.model_dir.name if options.model_dir else BUNDLED_NAME)
        report.scores[IN_PROCESS] = _in_process(tasks, options, name)
    elif options.reference is not None:
        report.scores["reference"] = reference_scores(Path(options.reference), tasks)
    options.output.mkdir(parents=True, exist_ok=True)
    (options.output / "summary.json").write_bytes(report.to_json())
    (options.output / "summary.md").write_text(report.table() + "\n", encoding="utf-8")
    return report


def _in_process(tasks: list[AbsTask], options: EvalOptions, name: str) -> dict[str, float]:
    """The tasks on the engine in this process; `name` is what its results are filed under."""
    with Embedder(
        options.model_dir, cache_dir=options.cache_dir, **options.engine_settings
    ) as model:
        encoder = InProcessEncoder(model, name, quiet=options.quiet)
        return _evaluate(encoder, tasks, options, IN_PROCESS)


def _evaluate(
    encoder: ServedEncoder | InProcessEncoder, tasks: list[AbsTask], options: EvalOptions, run: str
) -> dict[str, float]:
    if options.quiet:
        datasets.disable_progress_bars()
    if options.resume:
        drop_unreadable_results(options.output / run)
    result = mteb.evaluate(
        encoder,  # type: ignore[arg-type]  # an AbsEncoder, MTEB's own base for its wrappers
        tasks,
        cache=mteb.ResultCache(options.output / run),
        overwrite_strategy="only-missing" if options.resume else "always",
        show_progress_bar=not options.quiet,
    )
    return {task.task_name: float(task.get_score()) for task in result.task_results}


def drop_unreadable_results(folder: Path) -> list[Path]:
    """Remove the result files a killed run left half-written (MTEB writes them in place), so
    that `--resume` evaluates those tasks again instead of failing on them."""
    dropped = []
    for path in sorted(folder.rglob("*.json")):
        try:  # the standard parser: MTEB's files may hold NaN, which orjson refuses
            json.loads(path.read_bytes())
        except ValueError:
            logger.warning(
                "%s is not whole (a run killed while writing it?): evaluated again", path
            )
            path.unlink()
            dropped.append(path)
    return dropped


def reference_scores(folder: Path, tasks: list[AbsTask]) -> dict[str, float]:
    """Main scores from MTEB result files under `folder` (one `<task>.json` per task, at any
    depth: an earlier `eval --output`, or a model's folder of MTEB's results repository)."""
    scores = {}
    for task in tasks:
        name = task.metadata.name
        found = sorted(path for path in folder.rglob(f"{name}.json") if path.is_file())
        if not found:
            raise FileNotFoundError(f"--reference {folder}: no {name}.json in it")
        if len(found) > 1:
            places = ", ".join(str(path.parent) for path in found[:3])
            raise ValueError(f"--reference {folder}: {name}.json in several places ({places})")
        scores[name] = float(TaskResult.from_disk(found[0]).get_score())
    return scores
