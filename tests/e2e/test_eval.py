"""`embedserve eval` end to end: three local MTEB tasks (retrieval, classification, STS) through
a real server process and in-process score the same within 1e-4, the result files are MTEB's,
a results folder works as the reference (and a doctored one fails), and keys are sent."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import mteb
import pytest

from embedserve.cli import main
from tests.conftest import ServerProcess, start_server
from tests.eval_tasks import write_all

MODEL_FOLDER = "sentence-transformers__all-MiniLM-L6-v2/no_revision_available"
FLOORS = {"LocalNewsRetrieval": 0.4, "LocalTopicClassification": 0.7, "LocalSTS": 0.7}


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_all(tmp_path_factory.mktemp("eval-tasks"))


@pytest.fixture(scope="module")
def compared(
    real_server: ServerProcess, tasks: list[Path], onnx_cache_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[int, Path]:  # fmt: skip
    """One run through the server with the in-process reference: exit code, output folder."""
    output = tmp_path_factory.mktemp("eval") / "results"
    code = main(
        ["eval", "--url", real_server.base_url, "--reference", "in-process", "--quiet",
         "--tasks", *map(str, tasks), "--output", str(output), "--cache-dir", str(onnx_cache_dir)]
    )  # fmt: skip
    return code, output


def test_served_scores_equal_in_process_scores(compared: tuple[int, Path]) -> None:
    code, output = compared
    assert code == 0
    summary = json.loads((output / "summary.json").read_text())
    assert summary["runs"] == ["server", "in-process"]
    for row in summary["tasks"]:
        assert abs(row["server"] - row["in-process"]) <= 1e-4, row
        assert row["difference"] == pytest.approx(row["server"] - row["in-process"])
        assert row["server"] > FLOORS[row["task"]], row  # the model did the task, not noise
    table = (output / "summary.md").read_text()
    assert all(name in table for name in FLOORS)


def test_the_result_files_are_mteb_s(compared: tuple[int, Path]) -> None:
    _, output = compared
    summary = {
        row["task"]: row for row in json.loads((output / "summary.json").read_text())["tasks"]
    }
    for run, folder in (("server", MODEL_FOLDER), ("in-process", MODEL_FOLDER)):
        results = output / run / "results" / folder
        assert (results / "model_meta.json").is_file()
        for name in FLOORS:
            result = mteb.TaskResult.from_disk(results / f"{name}.json")
            assert result.task_name == name
            assert result.get_score() == pytest.approx(summary[name][run], abs=1e-6)  # 6 places
            assert "test" in result.scores and result.mteb_version
    loaded = mteb.ResultCache(output / "server").load_results(tasks=None, models=None)
    assert {task.task_name for model in loaded for task in model.task_results} == set(FLOORS)


def test_a_results_folder_is_a_reference_and_a_doctored_one_fails(
    compared: tuple[int, Path], real_server: ServerProcess, tasks: list[Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _, output = compared
    sts = [str(path) for path in tasks if path.name == "sts"]
    reference = output / "in-process"
    args = ["eval", "--url", real_server.base_url, "--quiet", "--tasks", *sts]
    assert main([*args, "--reference", str(reference), "-o", str(tmp_path / "a")]) == 0
    passed = re.search(r"PASS: largest difference (\S+)", capsys.readouterr().out)
    assert passed and float(passed.group(1)) < 1e-6  # the files keep 6 decimal places
    doctored = tmp_path / "doctored"
    source = reference / "results" / MODEL_FOLDER / "LocalSTS.json"
    result = json.loads(source.read_text())
    for scores in result["scores"]["test"]:
        scores["main_score"] += 0.01
    doctored.mkdir()
    (doctored / "LocalSTS.json").write_text(json.dumps(result))
    assert main([*args, "--reference", str(doctored), "-o", str(tmp_path / "b")]) == 1
    assert "FAIL: largest difference 1.00e-02" in capsys.readouterr().out


@pytest.mark.slow
def test_the_api_key_is_sent_and_a_refusal_is_reported(
    tmp_path: Path, tasks: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_server(["--backend", "fake", "--api-key", "k1"], tmp_path / "server.log")
    try:
        sts = [str(path) for path in tasks if path.name == "sts"]
        args = ["eval", "--url", server.base_url, "--quiet", "--tasks", *sts, "-o", str(tmp_path)]
        assert main([*args, "--api-key", "k1"]) == 0
        assert "LocalSTS" in capsys.readouterr().out
        assert main([*args, "--api-key", "wrong"]) == 1
        assert "401" in capsys.readouterr().err
    finally:
        server.stop()


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--tasks", "x", "--reference", "in-process"]) == 2
    assert "give --url too" in capsys.readouterr().err
    assert main(["eval", "--url", "http://h", "--tasks", "x", "--reference", "nowhere"]) == 2
    assert "neither `in-process` nor a folder" in capsys.readouterr().err
    assert main(["eval", "--tasks", str(tmp_path)]) == 2
    assert "needs a task.json" in capsys.readouterr().err


def test_resume_keeps_whole_results_and_redoes_a_half_written_one(
    compared: tuple[int, Path], real_server: ServerProcess, tasks: list[Path], tmp_path: Path
) -> None:
    """A run killed while MTEB wrote a result file: `--resume` evaluates that task again and
    keeps the others as they are."""
    _, output = compared
    copy = tmp_path / "results"
    shutil.copytree(output / "server", copy / "server")
    folder = copy / "server" / "results" / MODEL_FOLDER
    kept = (folder / "LocalTopicClassification.json").read_bytes()
    whole = (folder / "LocalSTS.json").read_bytes()
    (folder / "LocalSTS.json").write_bytes(whole[: len(whole) // 2])
    chosen = [str(path) for path in tasks if path.name in ("sts", "classification")]
    args = ["eval", "--url", real_server.base_url, "--quiet", "--tasks", *chosen]
    assert main([*args, "--resume", "-o", str(copy)]) == 0
    assert (folder / "LocalTopicClassification.json").read_bytes() == kept  # not evaluated
    redone = mteb.TaskResult.from_disk(folder / "LocalSTS.json")
    assert redone.get_score() == pytest.approx(
        mteb.TaskResult.from_disk(output / "server" / "results" / MODEL_FOLDER / "LocalSTS.json")
        .get_score(), abs=1e-6
    )  # fmt: skip
