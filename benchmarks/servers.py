"""The servers compare.py measures: embedserve and Infinity (in its own virtualenv), each a
process on a free port, waited on until healthy and stopped after."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from embedserve.bench.loadgen import server_root
from embedserve.models import BUNDLED_MODEL_ID, bundled_model_path
from embedserve.testing import free_port, launch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


INFINITY_VENV = HERE / ".infinity-venv"


INFINITY_VERSION = "0.0.78"


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
    """A server process started with the tests' launcher, stopped on exit."""
    log = RESULTS / f".{name}.log"
    started = launch(command, log, f"http://127.0.0.1:{port}", env=env, cwd=cwd, timeout_s=600)
    try:
        yield Server(name, started.process, f"http://127.0.0.1:{port}{path}", model, log)
    finally:
        started.stop(timeout_s=30)


def embedserve_server(cache_dir: Path, *extra: str) -> contextlib.AbstractContextManager[Server]:
    """embedserve with its result cache off: the rows send the same texts again and again, and
    the peers have no cache (the cache has rows of its own in `vector_controls.py`)."""
    port = free_port()
    command = [sys.executable, "-m", "embedserve", "serve", "--port", str(port)]
    command += ["--cache-dir", str(cache_dir), "--log-level", "warning", "--cache-entries", "0"]
    command += extra
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


def root_of(server: Server) -> str:
    """`http://127.0.0.1:port` of a server."""
    return server_root(server.embeddings_url)
