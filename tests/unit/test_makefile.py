"""The Makefile's install commands, as make expands them (`make -n`, nothing run): `make run`
installs the server with the export and jobs extras, `make test` the test extras, each with uv
and pip as the fallback. (A bare comma in `$(call ...)` once cut `make run`'s command in two.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def planned(target: str, tmp_path: Path, **env: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
        env={**os.environ, **env},
    )  # fmt: skip
    return done.stdout


@pytest.mark.parametrize(
    ("target", "extras"), [("run", ".[export,jobs]"), ("install-test", ".[test]")]
)
def test_install_commands_name_the_extras(target: str, extras: str, tmp_path: Path) -> None:
    lines = [line for line in planned(target, tmp_path).splitlines() if "uv pip install" in line]
    assert len(lines) == 1, lines
    uv, pip = lines[0].split(" || ")
    assert uv.endswith(f'-e "{extras}"'), uv
    assert pip.endswith(f'pip install --quiet -e "{extras}"'), pip


def test_uv_gets_pips_find_links_and_constraints(tmp_path: Path) -> None:
    """uv reads no pip configuration: what pip would use is passed to it, and it compiles
    bytecode as pip does (else every server and Ray worker compiles its imports anew)."""
    env = {"PIP_FIND_LINKS": "/wheels/here", "PIP_CONSTRAINT": "/caps.txt"}
    lines = planned("install-test", tmp_path, **env).splitlines()
    uv = next(line for line in lines if "uv pip install" in line)
    assert "--find-links /wheels/here" in uv and "--constraint /caps.txt" in uv
    assert "--compile-bytecode" in uv
