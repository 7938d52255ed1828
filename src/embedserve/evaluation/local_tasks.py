"""MTEB tasks from a local folder, for data of your own or a machine without the hub.

A folder holds `task.json` — `{"name": ..., "type": "Retrieval" | "Classification" | "STS"}`,
optionally `main_score`, `splits` (default `["test"]`), `languages` (default `["eng-Latn"]`),
`description`, and for STS `min_score` / `max_score` (default 0 and 5) — and JSON Lines data:

- STS: `<split>.jsonl` rows `{"sentence1", "sentence2", "score"}`;
- Classification: `train.jsonl` and `<split>.jsonl` rows `{"text", "label"}`;
- Retrieval, BEIR's layout: `corpus.jsonl` (`_id` or `id`, `text`, optional `title`),
  `queries.jsonl` (`_id` or `id`, `text`), `qrels/<split>.tsv` (query-id, corpus-id, score,
  with a header row).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
from datasets import Dataset, DatasetDict
from mteb.abstasks import AbsTask
from mteb.abstasks.classification import AbsTaskClassification
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata

BASES: dict[str, type[AbsTask]] = {
    "Retrieval": AbsTaskRetrieval,
    "Classification": AbsTaskClassification,
    "STS": AbsTaskSTS,
}
MAIN_SCORES = {"Retrieval": "ndcg_at_10", "Classification": "accuracy", "STS": "cosine_spearman"}


class TaskFolderError(ValueError):
    """A task folder that cannot be read; the message says which file and what to change."""


def is_task_folder(path: Path) -> bool:
    """A folder with a `task.json`."""
    return (path / "task.json").is_file()


def task_from_folder(folder: Path) -> AbsTask:
    """The MTEB task the folder describes, its data read when MTEB asks for it."""
    spec = _read_spec(folder)
    kind = spec["type"]
    metadata = TaskMetadata(
        name=spec["name"],
        description=spec.get("description", f"local task from {folder}"),
        type=kind,
        main_score=spec.get("main_score", MAIN_SCORES[kind]),
        dataset={"path": str(folder), "revision": "local"},
        eval_splits=list(spec.get("splits", ["test"])),
        eval_langs=list(spec.get("languages", ["eng-Latn"])),
        category="t2t",
        modalities=["text"],
        reference=None,
        date=None,
        domains=None,
        task_subtypes=None,
        license=None,
        annotations_creators=None,
        dialect=None,
        sample_creation=None,
        bibtex_citation=None,
    )
    attributes: dict[str, Any] = {"metadata": metadata, "load_data": _loader(folder, kind)}
    if kind == "STS":
        attributes |= {"min_score": spec.get("min_score", 0), "max_score": spec.get("max_score", 5)}
    task_class = type(spec["name"], (BASES[kind],), attributes)
    task: AbsTask = task_class()
    return task


def _read_spec(folder: Path) -> dict[str, Any]:
    path = folder / "task.json"
    try:
        spec = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise TaskFolderError(f"{path}: not JSON ({exc})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise TaskFolderError(f'{path}: give an object with a "name" string')
    if spec.get("type") not in BASES:
        raise TaskFolderError(f'{path}: "type" must be one of {", ".join(BASES)}')
    return spec


def _loader(folder: Path, kind: str) -> Any:
    def load_data(self: AbsTask, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        splits = self.metadata.eval_splits
        if kind == "Retrieval":
            corpus = _records(folder / "corpus.jsonl", ("text",), id_field=True)
            queries = _records(folder / "queries.jsonl", ("text",), id_field=True)
            self.dataset = {
                "default": {
                    split: RetrievalSplitData(
                        corpus=Dataset.from_list(corpus),
                        queries=Dataset.from_list(queries),
                        relevant_docs=_qrels(folder / "qrels" / f"{split}.tsv"),
                        top_ranked=None,
                    )
                    for split in splits
                }
            }
        else:
            columns = ("sentence1", "sentence2", "score") if kind == "STS" else ("text", "label")
            names = [*splits, "train"] if kind == "Classification" else splits
            self.dataset = DatasetDict(
                {
                    split: Dataset.from_list(_records(folder / f"{split}.jsonl", columns))
                    for split in dict.fromkeys(names)
                }
            )
        self.data_loaded = True

    return load_data


def _records(
    path: Path, required: tuple[str, ...], *, id_field: bool = False
) -> list[dict[str, Any]]:
    if not path.is_file():
        raise TaskFolderError(f"{path}: missing (see `embedserve eval --help` for the layout)")
    rows = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise TaskFolderError(f"{path}:{number}: not JSON ({exc})") from None
            missing = [name for name in required if name not in row]
            if id_field:
                row["id"] = str(row.pop("_id", row.get("id", "")))
                if not row["id"]:
                    missing.append("_id")
            if missing:
                raise TaskFolderError(f"{path}:{number}: no {', '.join(missing)}")
            rows.append(row)
    if not rows:
        raise TaskFolderError(f"{path}: no records")
    return rows


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise TaskFolderError(f"{path}: missing (query-id, corpus-id, score; a header row)")
    relevant: dict[str, dict[str, int]] = {}
    with path.open(newline="", encoding="utf-8") as table:
        for number, row in enumerate(csv.reader(table, delimiter="\t"), start=1):
            if number == 1 or not row:
                continue  # the header
            try:
                query, document, score = row[0], row[1], int(float(row[2]))
            except (IndexError, ValueError):
                raise TaskFolderError(f"{path}:{number}: want query-id, corpus-id, score") from None
            relevant.setdefault(query, {})[document] = score
    return relevant
