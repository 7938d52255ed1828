"""The export cache heals and fails clearly: corrupt artefacts are set aside and rebuilt once, an
unwritable cache is a clear error naming --cache-dir, dead builders' staging folders are removed,
and the ONNX key is the model's files alone (tool versions recorded beside the graph)."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedserve.backends import export_cache, onnx_export, openvino_runtime
from embedserve.backends.export_cache import remove_stale_builds
from embedserve.backends.onnx_export import cached_onnx_path, ensure_onnx, ensure_onnx_fp16
from embedserve.backends.onnx_runtime import OnnxBackend
from embedserve.backends.openvino_runtime import OpenVinoBackend, cached_openvino_path
from embedserve.errors import ModelLoadError
from embedserve.models import ModelSpec, load_model_spec
from tests.e2e.export_cache.damage import (
    IDS,
    MASK,
    _chmod_stops_root,
    _raise,
    garbage,
    set_aside_folders,
    truncated,
)


@pytest.mark.parametrize("damage", [garbage, truncated])
def test_corrupt_cached_onnx_is_set_aside_and_rebuilt(
    tiny: ModelSpec,
    cache: Path,
    fresh_vectors: np.ndarray,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], None],
) -> None:
    target = cached_onnx_path(tiny, cache)
    damage(target)
    with caplog.at_level(logging.WARNING, logger="embedserve"):
        backend = OnnxBackend.load(tiny, device="cpu", cache_dir=cache)
    try:
        np.testing.assert_allclose(backend.forward(IDS, MASK), fresh_vectors, atol=1e-5)
    finally:
        backend.close()
    [aside] = set_aside_folders(target.parent)
    assert (aside / "model.onnx").is_file()
    assert str(target.parent) in caplog.text and "moving it aside" in caplog.text
    assert not list(target.parent.parent.glob(".build-*"))


def test_corrupt_source_of_fp16_is_rebuilt_before_converting(tiny: ModelSpec, cache: Path) -> None:
    """The fp16 conversion reads the fp32 export: a corrupt one is rebuilt first."""
    source = cached_onnx_path(tiny, cache)
    garbage(source)
    backend = OnnxBackend.load(tiny, device="cpu", cache_dir=cache, precision="fp16")
    backend.close()
    assert len(set_aside_folders(source.parent)) == 1
    garbage(ensure_onnx_fp16(tiny, cache))  # now the fp16 graph itself is corrupt
    fp16 = ensure_onnx_fp16(tiny, cache)
    assert len(set_aside_folders(fp16.parent)) == 1
    assert len(set_aside_folders(source.parent)) == 1  # the good source was left alone


def test_corrupt_openvino_ir_is_set_aside_and_rebuilt(
    tiny: ModelSpec, cache: Path, fresh_vectors: np.ndarray
) -> None:
    target = cached_openvino_path(tiny, cache, "fp32")

    def served() -> np.ndarray:
        backend = OpenVinoBackend.load(tiny, device="cpu", cache_dir=cache, precision="fp32")
        try:
            return backend.forward(IDS, MASK)
        finally:
            backend.close()

    converted = served()
    np.testing.assert_allclose(converted, fresh_vectors, atol=2e-2)  # a different runtime
    garbage(target)
    np.testing.assert_allclose(served(), converted, atol=1e-6)  # rebuilt, same as fresh
    assert len(set_aside_folders(target.parent)) == 1


def test_rebuilt_artefact_that_also_fails_is_a_load_error(
    tiny: ModelSpec, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[Path] = []

    def broken_export(spec: ModelSpec, destination: Path) -> None:
        builds.append(destination)
        garbage(destination)

    monkeypatch.setattr(onnx_export, "export_to_onnx", broken_export)
    garbage(cached_onnx_path(tiny, cache))
    with pytest.raises(ModelLoadError, match="rebuilt after the cached one failed"):
        OnnxBackend.load(tiny, device="cpu", cache_dir=cache)
    assert len(builds) == 1
    # A fresh build that does not open is not retried either.
    with pytest.raises(ModelLoadError, match="just built"):
        OnnxBackend.load(tiny, device="cpu", cache_dir=tmp_path / "empty")
    assert len(builds) == 2


@pytest.mark.parametrize("how", ["not-a-directory", "read-only", "full", "chmod"])
def test_unwritable_cache_is_a_clear_error(
    tiny: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    cache = tmp_path / "cache"
    expected = {"not-a-directory": "Not a directory", "chmod": "Permission denied"}
    if how == "not-a-directory":
        (tmp_path / "a-file").write_text("")
        cache = tmp_path / "a-file" / "cache"
    elif how == "read-only":
        monkeypatch.setattr(tempfile, "mkdtemp", _raise(errno.EROFS))
    elif how == "full":
        monkeypatch.setattr(onnx_export, "export_to_onnx", _raise(errno.ENOSPC))
    elif not _chmod_stops_root(tmp_path):
        pytest.skip("running as root: chmod does not stop writes (the other cases cover it)")
    else:
        cache.mkdir(mode=0o555)
    try:
        with pytest.raises(ModelLoadError) as raised:
            OnnxBackend.load(tiny, device="cpu", cache_dir=cache)
    finally:
        if cache.is_dir():
            cache.chmod(0o755)
    message = raised.value.message
    assert message.startswith("cannot write the export cache at ")
    assert "point --cache-dir (or EMBEDSERVE_CACHE_DIR) at a writable directory" in message
    codes = {"read-only": errno.EROFS, "full": errno.ENOSPC}
    assert (expected.get(how) or os.strerror(codes[how])) in message


def test_read_only_cache_with_a_valid_export_still_works(
    tiny: ModelSpec,
    cache: Path,
    fresh_vectors: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fp16 = ensure_onnx_fp16(tiny, cache)
    for name in ("mkdir", "rename", "replace", "rmdir", "unlink"):
        monkeypatch.setattr(os, name, _raise(errno.EROFS))
    monkeypatch.setattr(tempfile, "mkdtemp", _raise(errno.EROFS))
    for precision in ("fp32", "fp16"):
        backend = OnnxBackend.load(tiny, device="cpu", cache_dir=cache, precision=precision)
        assert backend.forward(IDS, MASK).shape == fresh_vectors.shape
        backend.close()
    garbage(fp16)  # a corrupt artefact that cannot be set aside: the same clear error
    with pytest.raises(ModelLoadError, match="Read-only file system; point --cache-dir"):
        OnnxBackend.load(tiny, device="cpu", cache_dir=cache, precision="fp16")


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_staging_folders_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = _dead_pid()
    host = export_cache._HOST
    stale = [f".build-{dead}-x", f".build-{dead}-{host}-abc", ".build-oldname"]
    kept = [f".build-{os.getpid()}-x", f".build-{os.getpid()}-{host}-abc", ".build-newname"]
    kept.append(f".build-{dead}-another-host-abc")  # its pid means nothing here; it is recent
    for name in stale + kept:
        (tmp_path / name / "sub").mkdir(parents=True)
    hours_ago = time.time() - 2 * export_cache.STALE_BUILD_S
    os.utime(tmp_path / ".build-oldname", (hours_ago, hours_ago))
    remove_stale_builds(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


_KILLED_EXPORT = """
import sys, time
from pathlib import Path
from embedserve.backends import onnx_export
from embedserve.models import load_model_spec

def slow_export(spec, destination):
    destination.write_bytes(b"half a graph")
    print("exporting", flush=True)
    time.sleep(120)

onnx_export.export_to_onnx = slow_export
onnx_export.ensure_onnx(load_model_spec(Path(sys.argv[1])), Path(sys.argv[2]))
"""


def test_export_killed_midway_leaves_no_artefact_and_its_staging_is_cleaned(
    tiny: ModelSpec, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_EXPORT, str(tiny.path), str(cache)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "exporting\n"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    target = cached_onnx_path(tiny, cache)
    [left] = target.parent.parent.glob(f".build-{process.pid}-*")
    assert not target.parent.exists()
    ensure_onnx(tiny, cache)
    assert target.is_file() and not left.exists()


def test_the_onnx_key_is_the_model_and_tool_versions_are_recorded(
    tiny: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export made with PyTorch is found by a runtime without it (the key is the model's
    files); the exporting tools' versions are written beside the graph. OpenVINO's IR is
    still keyed by the OpenVINO and NNCF versions that convert it."""
    assert onnx_export.package_version("no-such-distribution-here") == "absent"
    onnx_before = cached_onnx_path(tiny, tmp_path)
    openvino_before = cached_openvino_path(tiny, tmp_path, "int8")
    real = onnx_export.package_version
    for upgraded in ("torch", "transformers", "onnxruntime", "openvino", "nncf"):

        def fake(*names: str, upgraded: str = upgraded) -> str:
            return "absent" if upgraded in names else real(*names)

        monkeypatch.setattr(onnx_export, "package_version", fake)
        assert cached_onnx_path(tiny, tmp_path) == onnx_before, upgraded
        openvino_after = openvino_runtime.cached_openvino_path(tiny, tmp_path, "int8")
        assert (openvino_after != openvino_before) == (upgraded in ("openvino", "nncf")), upgraded
    monkeypatch.setattr(onnx_export, "package_version", real)
    ensure_onnx(tiny, tmp_path)
    record = json.loads((onnx_before.parent / "export.json").read_text())
    assert record["tools"]["torch"] == real("torch") != "absent"
    assert record["max_abs_diff"] < 1e-3


def test_no_export_and_no_exporter_is_a_clear_error(
    tiny: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = onnx_export.find_spec
    monkeypatch.setattr(
        onnx_export, "find_spec", lambda name: None if name == "torch" else real(name)
    )
    with pytest.raises(
        ModelLoadError, match=r"exporting it needs torch: pip install 'embedserve\[export\]'"
    ):
        ensure_onnx(tiny, tmp_path)
    assert not cached_onnx_path(tiny, tmp_path).exists()
    monkeypatch.setattr(onnx_export, "find_spec", real)
    target = ensure_onnx(tiny, tmp_path)  # exported here, now found without the exporter
    monkeypatch.setattr(onnx_export, "find_spec", lambda name: None)
    assert ensure_onnx(tiny, tmp_path) == target


def test_an_onnx_graph_in_the_model_directory_is_served_without_exporting(  # noqa: PLR0917
    tiny: ModelSpec, clean_cache: Path, fresh_vectors: np.ndarray, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    model = tmp_path / "model"
    shutil.copytree(tiny.path, model)
    (model / "onnx").mkdir()
    shutil.copy(cached_onnx_path(tiny, clean_cache), model / "onnx" / "model.onnx")
    spec = load_model_spec(model)
    monkeypatch.setattr(onnx_export, "find_spec", lambda name: None)  # no exporter installed
    empty = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="embedserve"):
        backend = OnnxBackend.load(spec, device="cpu", cache_dir=empty)
    try:
        np.testing.assert_allclose(backend.forward(IDS, MASK), fresh_vectors, atol=1e-6)
    finally:
        backend.close()
    assert "serving the model's own ONNX graph" in caplog.text
    assert not empty.exists()  # nothing exported, nothing cached
