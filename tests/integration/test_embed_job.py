"""`embedserve embed` in-process on the fake backend: shards in input order whose vectors equal
the engine's, a resumed run that writes only the missing shards and ends with the same output,
empty texts skipped and counted, other arguments refused, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from embedserve.cli import main
from embedserve.jobs.output import OutputMismatch, hold_output, shard_path
from embedserve.jobs.readers import Fields
from embedserve.jobs.run import JobOptions, run_job
from embedserve.library import Embedder
from embedserve.settings import ModelSettings

SETTINGS = ModelSettings(backend="fake", truncate="END")


def corpus(path: Path, count: int = 23) -> Path:
    rows = [{"doc": f"d{i}", "text": f"text number {i} " + "word " * (i % 7)} for i in range(count)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def read_output(output: Path) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(sorted(output.glob("part-*.parquet")))
    return table.column("id").to_pylist(), np.array(table.column("embedding").to_pylist())


def options(tmp_path: Path, **changes: object) -> JobOptions:
    given: dict[str, object] = {
        "inputs": (str(corpus(tmp_path / "c.jsonl")),),
        "output": tmp_path / "out",
        "fields": Fields(id="doc"),
        "shard_size": 5,
        "quiet": True,
    }
    return JobOptions(**(given | changes))  # type: ignore[arg-type]


def test_the_output_equals_the_engines_vectors(tmp_path: Path) -> None:
    job = options(tmp_path)
    summary = run_job(SETTINGS, job, tmp_path / "cache")
    assert (summary.shards_written, summary.texts) == (5, 23)
    ids, vectors = read_output(job.output)
    assert ids == [f"d{i}" for i in range(23)]
    texts = [json.loads(line)["text"] for line in Path(job.inputs[0]).read_text().splitlines()]
    with Embedder(SETTINGS, cache_dir=tmp_path / "cache") as embedder:
        assert np.array_equal(vectors, embedder.encode(texts))
    import pyarrow.dataset as ds  # the folder reads as one dataset: the manifest is skipped

    assert ds.dataset(job.output, format="parquet").to_table().num_rows == 23
    manifest = json.loads((job.output / "_manifest.json").read_text())
    assert manifest["progress"]["complete"] and manifest["identity"]["id_field"] == "doc"


def test_a_rerun_writes_only_missing_shards(tmp_path: Path) -> None:
    job = options(tmp_path)
    run_job(SETTINGS, job, tmp_path / "cache")
    ids, vectors = read_output(job.output)
    for index in (1, 4):
        shard_path(job.output, index).unlink()
    (job.output / ".part-00001.parquet.999.partial").write_bytes(b"cut short")
    resumed = run_job(SETTINGS, job, tmp_path / "cache")
    assert (resumed.shards_written, resumed.shards_skipped, resumed.texts) == (2, 3, 8)
    again_ids, again = read_output(job.output)
    assert again_ids == ids and np.array_equal(again, vectors)
    assert not list(job.output.glob("*.partial"))
    with pytest.raises(OutputMismatch, match="shard_size"):
        run_job(SETTINGS, options(tmp_path, shard_size=6), tmp_path / "cache")


def test_empty_texts_are_skipped_and_counted(tmp_path: Path) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("alpha\n\nbeta\n\n\ngamma\n")
    job = options(tmp_path, inputs=(str(lines),), fields=Fields())
    summary = run_job(SETTINGS, job, tmp_path / "cache")
    assert (summary.texts, summary.empty_skipped) == (3, 3)
    assert read_output(job.output)[0] == ["0", "2", "5"]  # ids keep the line positions


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = corpus(tmp_path / "c.jsonl", count=4)
    out = tmp_path / "cli-out"
    argv = ["embed", str(source), "-o", str(out), "--id-field", "doc", "--backend", "fake"]
    assert main([*argv, "--quiet", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "embedded 4 texts" in capsys.readouterr().out
    assert read_output(out)[0] == ["d0", "d1", "d2", "d3"]
    assert main([*argv, "--quiet", "--shard-size", "2"]) == 2
    assert "other arguments" in capsys.readouterr().err
    assert main(["embed", str(tmp_path / "nope.txt"), "-o", str(out), "--backend", "fake"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_requests_stay_within_the_models_request_limits(tmp_path: Path) -> None:
    """A model that takes few tokens per request (here 20, under one shard's) gets requests
    that fit (one text each), and the same vectors."""
    from embedserve.settings import BatchingLimits

    tight = ModelSettings(
        backend="fake", truncate="END", limits=BatchingLimits(max_request_tokens=20)
    )
    job = options(tmp_path)
    assert run_job(tight, job, tmp_path / "cache").texts == 23
    loose = options(tmp_path, output=tmp_path / "loose")
    run_job(SETTINGS, loose, tmp_path / "cache")
    assert np.array_equal(read_output(job.output)[1], read_output(loose.output)[1])


def test_ray_flags_are_checked_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = corpus(tmp_path / "c.jsonl", count=2)
    argv = ["embed", str(source), "-o", str(tmp_path / "o"), "--backend", "fake", "--ray"]
    assert main([*argv, "--num-actors", "0"]) == 2
    assert "--num-actors must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_an_output_path_that_is_a_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = corpus(tmp_path / "c.jsonl", count=2)
    (tmp_path / "taken").write_text("a file")
    assert main(["embed", str(source), "-o", str(tmp_path / "taken"), "--backend", "fake"]) == 2
    assert "taken" in capsys.readouterr().err


def test_a_second_job_on_a_busy_output_is_refused_and_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = corpus(tmp_path / "c.jsonl", count=4)
    out = tmp_path / "out"
    argv = ["embed", str(source), "-o", str(out), "--backend", "fake", "--quiet"]
    assert main(argv) == 0
    staged = out / ".part-00009.parquet.4242.partial"  # the running job's shard in the making
    with hold_output(out):  # the running job
        staged.write_bytes(b"half a shard")
        assert main(argv) == 2
        assert "another `embedserve embed` job" in capsys.readouterr().err
        assert staged.read_bytes() == b"half a shard"  # not cleaned away under its writer
    assert main(argv) == 0  # once it is done, a re-run goes on (and cleans up)
    assert not staged.exists()
