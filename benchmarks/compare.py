"""Every comparison of issue 3 in one run, on the same machine and texts.

(a) sentence-transformers `encode` in-process, (b) our ONNX backend in-process with our batching
(the raw ceiling), (c) embedserve over HTTP at 1, 8, 32 and 128 clients, (d) Infinity over HTTP
with the same load generator (installed in its own virtualenv), then overload at 4x the
sustainable rate and, with --soak, RSS over a long run. Writes benchmarks/results/<stamp>.json and
benchmarks/results/latest.md.

    .venv/bin/python benchmarks/compare.py [--quick] [--skip-infinity] [--soak 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from embedserve.bench.loadgen import LoadSettings, run_load
from embedserve.bench.report import Report, markdown_table
from embedserve.bench.workloads import generate_texts
from embedserve.config import BatchingLimits, ModelSettings, default_cache_dir
from embedserve.engine import ModelRunner
from embedserve.models import BUNDLED_MODEL_ID, bundled_model_path
from embedserve.pooling import pool
from embedserve.postprocess import finalize
from embedserve.scheduler.batching import pad_batch, select_batch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
INFINITY_VENV = HERE / ".infinity-venv"
INFINITY_VERSION = "0.0.78"
CONCURRENCY = (1, 8, 32, 128)


def timed_runs(fn: Callable[[], object], runs: int, warmups: int) -> list[float]:
    """Wall time of each of `runs` calls of `fn`, after `warmups` untimed ones."""
    for _ in range(warmups):
        fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of `fn` over `repeats` runs (after one untimed warm-up)."""
    times = timed_runs(fn, repeats, warmups=1)
    return statistics.median(times), times


def single_latency_ms(fn: Callable[[], object], calls: int = 200) -> float:
    """Median latency of one call, in ms."""
    return statistics.median(timed_runs(fn, calls, warmups=10)) * 1000


# --- (a) and (b): in-process ---------------------------------------------------------------


def bench_sentence_transformers(
    mixed: list[str], short: list[str], tokens: int, repeats: int
) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    seconds, runs = median_time(
        lambda: model.encode(mixed, batch_size=32, normalize_embeddings=True), repeats
    )
    latency = single_latency_ms(lambda: model.encode([short[0]], normalize_embeddings=True))
    reference = model.encode(mixed[:200], normalize_embeddings=True)
    return {
        "tokens_per_s": round(tokens / seconds, 1),
        "inputs_per_s": round(len(mixed) / seconds, 1),
        "runs_s": [round(t, 3) for t in runs],
        "single_short_ms": round(latency, 2),
        "_reference": reference,
    }


def bench_raw_backend(
    mixed: list[str], short: list[str], tokens: int, repeats: int, cache_dir: Path
) -> dict[str, Any]:
    limits = BatchingLimits()
    runner = ModelRunner.from_settings(ModelSettings(backend="onnx"), cache_dir)
    runner.load()
    assert runner.backend is not None
    backend, spec, tokenizer = runner.backend, runner.spec, runner.tokenizer

    def embed(texts: list[str]) -> np.ndarray:
        ids = tokenizer.encode(texts)
        out = np.empty((len(ids), spec.dimension), dtype=np.float32)
        remaining = list(range(len(ids)))
        while remaining:  # the scheduler's batch selection over the whole set
            chosen = select_batch(
                [len(ids[i]) for i in remaining],
                max_batch_tokens=limits.max_batch_tokens,
                max_batch_size=512,
                window=len(remaining),
            )
            rows = [remaining[p] for p in chosen]
            input_ids, mask = pad_batch([ids[r] for r in rows], spec.pad_token_id)
            pooled = pool(backend.forward(input_ids, mask), mask, spec.pooling)
            out[rows] = finalize(pooled, dimensions=None, normalize=spec.normalize)
            taken = set(chosen)
            remaining = [r for p, r in enumerate(remaining) if p not in taken]
        return out

    seconds, runs = median_time(lambda: embed(mixed), repeats)
    latency = single_latency_ms(lambda: embed([short[0]]))
    vectors = embed(mixed[:200])
    runner.close()
    return {
        "tokens_per_s": round(tokens / seconds, 1),
        "inputs_per_s": round(len(mixed) / seconds, 1),
        "runs_s": [round(t, 3) for t in runs],
        "single_short_ms": round(latency, 2),
        "max_batch_tokens": limits.max_batch_tokens,
        "_vectors": vectors,
    }


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    embeddings_url: str
    model: str
    log: Path


@contextlib.contextmanager
def running(
    name: str,
    command: list[str],
    port: int,
    *,
    path: str,
    model: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    log = RESULTS / f".{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
    server = Server(name, process, f"http://127.0.0.1:{port}{path}", model, log)
    try:
        deadline = time.monotonic() + 600
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become healthy")
            time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def embedserve_server(cache_dir: Path, *extra: str) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    command = [sys.executable, "-m", "embedserve", "serve", "--port", str(port)]
    command += ["--cache-dir", str(cache_dir), "--log-level", "warning", *extra]
    return running("embedserve", command, port, path="/v1/embeddings", model=BUNDLED_MODEL_ID)


def ensure_infinity() -> Path:
    """Infinity in its own virtualenv, torch pinned first so pip keeps the CPU build."""
    binary = INFINITY_VENV / "bin" / "infinity_emb"
    if binary.exists():
        return INFINITY_VENV / "bin"
    subprocess.run([sys.executable, "-m", "venv", str(INFINITY_VENV)], check=True)
    pip = [str(INFINITY_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, f"infinity-emb[server,optimum]=={INFINITY_VERSION}"], check=True)
    return INFINITY_VENV / "bin"


def infinity_server(workdir: Path) -> contextlib.AbstractContextManager[Server]:
    """Infinity's fastest CPU engine (optimum = ONNX Runtime) on a copy of the same directory.

    Infinity needs an ONNX file next to the model and, with optimum 2.x, a relative model path
    (it passes the absolute file path where optimum expects a name), hence cwd + `--model-id .`.
    """
    bin_dir = ensure_infinity()
    model = workdir / "model"
    if not (model / "model.onnx").exists():
        shutil.copytree(bundled_model_path(), model, dirs_exist_ok=True)
        export = workdir / "onnx"
        subprocess.run(
            [
                str(bin_dir / "optimum-cli"),
                "export",
                "onnx",
                "--model",
                str(model),
                "--task",
                "feature-extraction",
                str(export),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        shutil.copy(export / "model.onnx", model / "model.onnx")
    port = free_port()
    command = [
        str(bin_dir / "infinity_emb"),
        "v2",
        "--model-id",
        ".",
        "--served-model-name",
        "all-MiniLM-L6-v2",
        "--engine",
        "optimum",
        "--device",
        "cpu",
        "--pooling-method",
        "mean",
        "--port",
        str(port),
    ]
    env = {"HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0"}
    return running(
        "infinity", command, port, path="/embeddings", model="all-MiniLM-L6-v2", cwd=model, env=env
    )


# --- (c) and (d): over HTTP ------------------------------------------------------------------


def load(server: Server, texts: list[str], counts: list[int], label: str, **kw: Any) -> Report:
    settings = LoadSettings(
        url=server.embeddings_url,
        texts=texts,
        token_counts=counts,
        model=server.model,
        progress=sys.stderr.isatty(),
        **kw,
    )
    report = run_load(settings, f"{server.name} {label}")
    print(markdown_table([report]).splitlines()[-1], flush=True)
    return report


def served_vectors(server: Server, texts: list[str]) -> np.ndarray:
    body = {"model": server.model, "input": texts}
    data = httpx.post(server.embeddings_url, json=body, timeout=120).json()["data"]
    return np.array([item["embedding"] for item in sorted(data, key=lambda d: d["index"])])


def http_suite(
    server: Server,
    *,
    mixed: list[str],
    mixed_counts: list[int],
    short: list[str],
    short_counts: list[int],
    requests: int,
    reference: np.ndarray,
) -> dict[str, Any]:
    rows: dict[str, Report] = {}
    for clients in CONCURRENCY:
        rows[f"mixed c={clients}"] = load(
            server,
            mixed,
            mixed_counts,
            f"mixed c={clients}",
            concurrency=clients,
            requests=requests,
            warmup=2 * clients,
        )
    for clients in (1, 8):
        rows[f"short c={clients}"] = load(
            server,
            short,
            short_counts,
            f"short c={clients}",
            concurrency=clients,
            requests=requests,
            warmup=20,
        )
    vectors = served_vectors(server, mixed[: len(reference)])
    cosine = (vectors * reference).sum(1) / np.linalg.norm(vectors, axis=1)
    return {"rows": rows, "min_cosine_to_st": float(cosine.min())}


def overload(
    server: Server, texts: list[str], counts: list[int], rate: float, *, seconds: int, label: str
) -> Report:
    return load(
        server,
        texts,
        counts,
        f"overload {rate:.0f}/s open, {label}",
        mode="open",
        rate=rate,
        requests=int(rate * seconds),
        warmup=10,
        timeout_s=30,
    )


def soak(server: Server, texts: list[str], counts: list[int], requests: int) -> Report:
    return load(
        server,
        texts,
        counts,
        f"soak {requests}",
        concurrency=8,
        requests=requests,
        warmup=1000,
        rss_every=max(requests // 50, 1),
        server_pid=server.process.pid,
    )


# --- report ----------------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def render(result: dict[str, Any]) -> str:
    st, raw, ours, inf = result["st"], result["raw"], result["embedserve"], result.get("infinity")
    lines = [
        f"Machine: {result['machine']}. Model: {BUNDLED_MODEL_ID}. Texts: {result['texts']}.",
        "",
        "In-process (median of {} runs over the mixed set):".format(result["repeats"]),
        "",
        "| run | tokens/s | inputs/s | one short text, ms |",
        "|---|---|---|---|",
        f"| (a) sentence-transformers encode(batch_size=32) | {st['tokens_per_s']:.0f} "
        f"| {st['inputs_per_s']:.1f} | {st['single_short_ms']:.2f} |",
        f"| (b) embedserve ONNX backend + batching, no HTTP | {raw['tokens_per_s']:.0f} "
        f"| {raw['inputs_per_s']:.1f} | {raw['single_short_ms']:.2f} |",
        "",
        "Over HTTP, same load generator on the same 2 cores (tokens counted by the model's "
        "tokenizer on the client side):",
        "",
        markdown_table(list(ours["rows"].values()) + (list(inf["rows"].values()) if inf else [])),
    ]
    if "overload" in result:
        lines += [
            "",
            "Overload: open loop (Poisson arrivals) at 4x the best mixed req/s above, "
            f"for {result['overload_seconds']} s:",
            "",
            markdown_table(result["overload"]),
        ]
    if "soak" in result:
        rss = result["soak"].rss_mb
        lines += [
            "",
            markdown_table([result["soak"]]),
            f"RSS MiB after warm-up {rss[0]}, at the end {rss[-1]}, max {max(rss)} "
            f"({(rss[-1] / rss[0] - 1) * 100:+.1f}%).",
        ]
    best = max(r.tokens_per_s for k, r in ours["rows"].items() if k.startswith("mixed"))
    targets = [
        ("HTTP saturation / raw backend (b)", ratio(best, raw["tokens_per_s"]), ">= 0.90x"),
        ("HTTP saturation / sentence-transformers (a)", ratio(best, st["tokens_per_s"]), ">= 1.2x"),
        (
            "short c=8 / short c=1 requests/s",
            ratio(
                ours["rows"]["short c=8"].requests_per_s, ours["rows"]["short c=1"].requests_per_s
            ),
            ">= 2x",
        ),
        (
            "single short p50 over HTTP - (b) single call",
            f"{ours['rows']['short c=1'].latency_ms['p50'] - raw['single_short_ms']:+.2f} ms",
            "<= +2 ms",
        ),
        ("embedserve min cosine to sentence-transformers", f"{ours['min_cosine_to_st']:.6f}", ""),
    ]
    if inf:
        for key, row in ours["rows"].items():
            other = inf["rows"][key]
            targets.append(
                (
                    f"embedserve / Infinity, {key} req/s",
                    ratio(row.requests_per_s, other.requests_per_s),
                    "> 1x",
                )
            )
        targets.append(
            ("Infinity min cosine to sentence-transformers", f"{inf['min_cosine_to_st']:.6f}", "")
        )
    elif "infinity_error" in result:
        targets.append(("Infinity", "not run: " + result["infinity_error"], ""))
    for o in result.get("overload", []):
        bad = sum(v for k, v in o.errors.items() if k in ("timeout", "error") or k.startswith("5"))
        name = o.label.split(", ", 1)[1]
        targets.append((f"overload ({name}): timeouts + 5xx", str(bad), "0"))
        targets.append(
            (f"overload ({name}): p99 of accepted", f"{o.latency_ms['p99']:.0f} ms", "<= 1000 ms")
        )
    lines += ["", "| measure | value | target |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {target} |" for name, value, target in targets]
    return "\n".join(lines) + "\n"


def plain(value: Any) -> Any:
    if isinstance(value, Report):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="mixed texts (5-120 words)")
    parser.add_argument("--repeats", type=int, default=3, help="in-process runs (median)")
    parser.add_argument("--quick", action="store_true", help="500 texts, 1 repeat")
    parser.add_argument("--skip-infinity", action="store_true")
    parser.add_argument("--soak", type=int, default=0, help="requests of the soak run (0: none)")
    parser.add_argument("--overload-seconds", type=int, default=20)
    args = parser.parse_args()
    if args.quick:
        args.texts, args.repeats = 500, 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    cache_dir = default_cache_dir()
    mixed = generate_texts("mixed", args.texts)
    short = generate_texts("short", args.texts)
    runner = ModelRunner.from_settings(ModelSettings(), cache_dir)
    mixed_counts = [len(ids) for ids in runner.tokenizer.encode(mixed)]
    short_counts = [len(ids) for ids in runner.tokenizer.encode(short)]
    tokens = sum(mixed_counts)
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "texts": f"{len(mixed)} mixed (5-120 words, {tokens} tokens, seed 0) and "
        f"{len(short)} short (10 tokens)",
        "repeats": args.repeats,
        "overload_seconds": args.overload_seconds,
    }
    print("(a) sentence-transformers ...", flush=True)
    result["st"] = bench_sentence_transformers(mixed, short, tokens, args.repeats)
    reference = result["st"]["_reference"]
    print("(b) raw backend ...", flush=True)
    result["raw"] = bench_raw_backend(mixed, short, tokens, args.repeats, cache_dir)
    suite = {
        "mixed": mixed,
        "mixed_counts": mixed_counts,
        "short": short,
        "short_counts": short_counts,
        "requests": len(mixed),
        "reference": reference,
    }
    print("(c) embedserve over HTTP ...", flush=True)
    with embedserve_server(cache_dir) as server:
        result["embedserve"] = http_suite(server, **suite)
        sustainable = max(
            r.requests_per_s
            for k, r in result["embedserve"]["rows"].items()
            if k.startswith("mixed")
        )
        rate = 4 * sustainable

        def overload_at_4x(server: Server, label: str) -> Report:
            return overload(
                server, mixed, mixed_counts, rate, seconds=args.overload_seconds, label=label
            )

        result["overload"] = [overload_at_4x(server, "default queue")]
        if args.soak:
            result["soak"] = soak(server, short, short_counts, args.soak)
    with embedserve_server(cache_dir, "--max-queue-seconds", "0.25") as server:
        result["overload"].append(overload_at_4x(server, "--max-queue-seconds 0.25"))
    if not args.skip_infinity:
        print("(d) Infinity over HTTP ...", flush=True)
        try:
            with tempfile.TemporaryDirectory() as tmp, infinity_server(Path(tmp)) as server:
                result["infinity"] = http_suite(server, **suite)
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            result["infinity_error"] = str(exc)[-500:]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(plain(result), indent=2) + "\n")
    table = render(result)
    (RESULTS / "latest.md").write_text(table)
    print("\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
