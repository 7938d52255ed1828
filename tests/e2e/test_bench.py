"""`embedserve bench`: workloads, the report, and the load generator against a real socket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedserve.bench.loadgen import LoadSettings, embeddings_url, run_load, server_root
from embedserve.bench.report import Sample, markdown_table, summarize
from embedserve.bench.workloads import generate_texts, load_texts
from embedserve.cli import main
from embedserve.engine import Engine
from embedserve.models import ModelSpec
from embedserve.settings import BatchingLimits
from embedserve.tokenization import TextTokenizer
from tests.conftest import fake_runner, uvicorn_in_thread


def test_workloads_are_seeded_and_sized(bundled_spec: ModelSpec) -> None:
    tokenizer = TextTokenizer(bundled_spec)
    assert generate_texts("mixed", 50) == generate_texts("mixed", 50)
    assert generate_texts("mixed", 50, seed=1) != generate_texts("mixed", 50)
    short = [len(ids) for ids in tokenizer.encode(generate_texts("short", 100))]
    long = [len(ids) for ids in tokenizer.encode(generate_texts("long", 20))]
    mixed = [len(ids) for ids in tokenizer.encode(generate_texts("mixed", 500))]
    assert set(short) == {10}
    assert max(long) <= 256 and min(long) >= 240
    assert min(mixed) <= 12 and max(mixed) >= 110 and 50 < sum(mixed) / len(mixed) < 80
    with pytest.raises(ValueError, match="unknown workload"):
        generate_texts("huge", 1)


def test_file_workload_cycles_lines(tmp_path: Path) -> None:
    path = tmp_path / "texts.txt"
    path.write_text("first\n\nsecond\n")
    assert load_texts(f"file:{path}", 5) == ["first", "second", "first", "second", "first"]


def test_url_forms() -> None:
    assert embeddings_url("http://h:1") == "http://h:1/v1/embeddings"
    assert embeddings_url("http://h:1/v1/") == "http://h:1/v1/embeddings"
    assert embeddings_url("http://h:1/embeddings") == "http://h:1/embeddings"
    assert server_root("http://h:1/v1/embeddings") == "http://h:1"


def test_summary_counts_only_successes() -> None:
    samples = [Sample(0.010, 200, 2, 20), Sample(0.030, 200, 1, 10), Sample(0.001, 429, 0, 0)]
    samples += [Sample(5.0, "timeout", 0, 0)]
    report = summarize("demo", samples, 2.0, {})
    assert (report.requests, report.ok) == (4, 2)
    assert report.errors == {"429": 1, "timeout": 1}
    assert report.requests_per_s == 1.0 and report.inputs_per_s == 1.5
    assert report.tokens_per_s == 15.0
    assert report.latency_ms["max"] == 30.0 and report.latency_ms["mean"] == 20.0
    row = markdown_table([report]).splitlines()[-1]
    assert row.startswith("| demo | 1.0 | 1.5 | 15 |") and "429: 1" in row


def test_closed_and_open_loop_against_a_real_socket(bundled_spec: ModelSpec) -> None:
    runner, backend = fake_runner(bundled_spec)
    texts = generate_texts("mixed", 30)
    with uvicorn_in_thread(Engine([runner])) as base_url:
        closed = run_load(
            LoadSettings(
                url=base_url,
                texts=texts,
                concurrency=4,
                requests=40,
                inputs_per_request=3,
                warmup=2,
                progress=False,
                rss_every=10,
            ),
            "closed",
        )
        counts = [len(ids) for ids in runner.tokenizer.encode(texts)]
        opened = run_load(
            LoadSettings(
                url=base_url + "/v1",
                texts=texts,
                token_counts=counts,
                mode="open",
                rate=200,
                requests=30,
                warmup=0,
                progress=False,
                encoding="base64",
            ),
            "open",
        )
    assert (closed.ok, closed.errors) == (40, {})
    assert closed.inputs_per_s == pytest.approx(3 * closed.requests_per_s, rel=1e-3)
    assert closed.tokens_per_s > closed.inputs_per_s * 5
    assert len(closed.rss_mb) == 5 and all(50 < rss < 10_000 for rss in closed.rss_mb)
    assert (opened.ok, opened.errors) == (30, {})
    assert opened.settings["tokens_counted_by"] == "client"
    assert opened.tokens_per_s == pytest.approx(sum(counts) / opened.duration_s, rel=0.01)
    assert len(backend.seen) >= 2 + 40 * 3 + 30


def test_rejections_are_reported_and_clients_back_off(bundled_spec: ModelSpec) -> None:
    limits = BatchingLimits(max_queue_tokens=20)
    runner, _ = fake_runner(bundled_spec, limits=limits, delay_s=0.05)
    with uvicorn_in_thread(Engine([runner])) as base_url:
        report = run_load(
            LoadSettings(
                url=base_url,
                texts=generate_texts("short", 10),
                concurrency=6,
                requests=30,
                warmup=0,
                progress=False,
            ),
            "crowded",
        )
    assert report.ok + report.errors.get("429", 0) == 30
    assert report.errors.get("429", 0) > 0
    assert report.duration_s >= 1.0  # rejected clients waited for Retry-After (1 s)


def test_bench_command_prints_a_table_and_writes_json(
    bundled_spec: ModelSpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner, _ = fake_runner(bundled_spec)
    out = tmp_path / "results" / "run.json"
    with uvicorn_in_thread(Engine([runner])) as base_url:
        code = main(
            [
                "bench",
                "--url",
                base_url,
                "--workload",
                "short",
                "--requests",
                "25",
                "--concurrency",
                "2",
                "--no-progress",
                "--json",
                str(out),
            ]
        )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| short c=2 x1 |" in printed
    data = json.loads(out.read_text())
    assert data["ok"] == 25 and data["settings"]["concurrency"] == 2


def test_bench_sweeps_concurrency_and_plots(
    bundled_spec: ModelSpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner, _ = fake_runner(bundled_spec)
    out, chart = tmp_path / "sweep.json", tmp_path / "sweep.png"
    with uvicorn_in_thread(Engine([runner])) as base_url:
        argv = ["bench", "--url", base_url, "--workload", "short", "--requests", "12"]
        argv += ["--concurrency", "1,3", "--no-progress", "--json", str(out), "--plot", str(chart)]
        assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| short c=1 x1 |" in printed and "| short c=3 x1 |" in printed
    runs = json.loads(out.read_text())
    assert [run["settings"]["concurrency"] for run in runs] == [1, 3]
    assert all(run["ok"] == 12 for run in runs)
    assert chart.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(SystemExit):
        main(["bench", "--concurrency", "1,zero"])
