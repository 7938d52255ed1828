"""`--tasks` entries: task folders (each type, and what is wrong with a broken one), MTEB names
with data from a local copy (no hub), Python files and modules defining tasks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mteb.abstasks.classification import AbsTaskClassification
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.sts import AbsTaskSTS

from embedserve.evaluation.local_tasks import TaskFolderError, task_from_folder
from embedserve.evaluation.tasks import TaskError, resolve_tasks
from tests.eval_tasks import write_all, write_sts

PY_TASKS = """
from datasets import Dataset, DatasetDict
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata


class FileSTS(AbsTaskSTS):
    metadata = TaskMetadata(
        name="FileSTS", description="from a file", type="STS", main_score="cosine_spearman",
        dataset={"path": "none", "revision": "1"}, eval_splits=["test"], eval_langs=["eng-Latn"],
        category="t2t", modalities=["text"], reference=None, date=None, domains=None,
        task_subtypes=None, license=None, annotations_creators=None, dialect=None,
        sample_creation=None, bibtex_citation=None,
    )

    def load_data(self, **kwargs):
        rows = {"sentence1": ["a", "b"], "sentence2": ["a", "c"], "score": [5.0, 0.0]}
        self.dataset = DatasetDict({"test": Dataset.from_dict(rows)})
        self.data_loaded = True
"""


def test_the_three_folder_types_load(tmp_path: Path) -> None:
    retrieval, classification, sts = (task_from_folder(path) for path in write_all(tmp_path))
    assert isinstance(retrieval, AbsTaskRetrieval)
    assert isinstance(classification, AbsTaskClassification)
    assert isinstance(sts, AbsTaskSTS)
    assert (retrieval.metadata.main_score, sts.metadata.main_score) == (
        "ndcg_at_10",
        "cosine_spearman",
    )
    for task in (retrieval, classification, sts):
        task.load_data()
    split = retrieval.dataset["default"]["test"]
    assert len(split["corpus"]) == 150 and len(split["queries"]) == 60
    assert split["relevant_docs"]["q0"] == {"d0": 1}
    assert split["corpus"][0]["id"] == "d0"  # BEIR's `_id` read as MTEB's `id`
    assert len(classification.dataset["train"]) == len(classification.dataset["test"]) == 150
    assert sts.dataset["test"].column_names == ["sentence1", "sentence2", "score"]
    assert (sts.min_score, sts.max_score) == (0, 5)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda folder: (folder / "task.json").write_text("{"), "not JSON"),
        (lambda folder: (folder / "task.json").write_text('{"name": "x"}'), '"type" must be'),
        (lambda folder: (folder / "task.json").write_text('{"type": "STS"}'), '"name" string'),
        (lambda folder: (folder / "test.jsonl").unlink(), "test.jsonl: missing"),
        (lambda folder: (folder / "test.jsonl").write_text('{"sentence1": "a"}\n'), "no sentence2"),
        (lambda folder: (folder / "test.jsonl").write_text("\n"), "no records"),
        (lambda folder: (folder / "test.jsonl").write_text("[\n"), "test.jsonl:1: not JSON"),
    ],
)
def test_a_broken_folder_says_what_is_wrong(tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    folder = write_sts(tmp_path / "sts")
    damage(folder)
    with pytest.raises(TaskFolderError, match=message):
        task_from_folder(folder).load_data()


def test_bad_qrels_name_the_line(tmp_path: Path) -> None:
    folder = write_all(tmp_path)[0]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\n")
    with pytest.raises(TaskFolderError, match=r"test.tsv:2: want query-id, corpus-id, score"):
        task_from_folder(folder).load_data()


def test_an_mteb_name_reads_a_local_copy_of_its_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    copy = tmp_path / "datasets" / "mteb" / "stsbenchmark-sts"
    copy.mkdir(parents=True)
    rows = [{"sentence1": f"a {i}", "sentence2": f"b {i}", "score": i % 5} for i in range(12)]
    (copy / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (task,) = resolve_tasks(["STSBenchmark"], tmp_path / "datasets")
    assert task.metadata.dataset["path"] == str(copy)
    task.load_data()
    assert len(task.dataset["test"]) == 12
    (untouched,) = resolve_tasks(["STSBenchmark"], tmp_path / "elsewhere")
    assert untouched.metadata.dataset["path"] == "mteb/stsbenchmark-sts"


def test_python_files_and_modules_define_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_tasks.py").write_text(PY_TASKS)
    (task,) = resolve_tasks([str(tmp_path / "my_tasks.py")])
    assert task.metadata.name == "FileSTS"
    monkeypatch.syspath_prepend(str(tmp_path))
    (by_class,) = resolve_tasks(["my_tasks:FileSTS"])
    (by_module,) = resolve_tasks(["my_tasks:"])
    assert by_class.metadata.name == by_module.metadata.name == "FileSTS"
    sys.modules.pop("my_tasks", None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("NoSuchTaskAnywhere", "not an MTEB task name, a task folder"),
        ("missing.py", "no such file"),
        ("json:loads", "not an MTEB task class"),
        ("no_such_module_here:Task", "No module named"),
        ("json:", "defines no MTEB task"),
    ],
)
def test_entries_that_name_nothing_are_refused(spec: str, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        resolve_tasks([spec])


def test_a_folder_without_task_json_and_a_repeated_task(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match=r"needs a task\.json"):
        resolve_tasks([str(tmp_path)])
    folder = write_sts(tmp_path / "sts")
    with pytest.raises(TaskError, match="task named twice: LocalSTS"):
        resolve_tasks([str(folder), str(folder)])
