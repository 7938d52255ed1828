"""The export cache: artefacts built in a staging folder and renamed into place, stale builds
of dead processes removed, corrupt artefacts set aside and rebuilt once, and clear errors for a
cache that cannot be written."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from embedserve.errors import ModelLoadError

log = logging.getLogger(__name__)
T = TypeVar("T")

STALE_BUILD_S = 3600  # a staging folder whose owner cannot be checked is stale after this long
# A build failing with one of these could not write its staging folder (others are the build's).
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"
# `.build-<pid>-<host>-<random>` (mkdtemp's random part has no dash); `<host>-` may be absent.
_STAGING_NAME = re.compile(r"\.build-(?P<pid>\d+)-(?:(?P<host>.+)-)?[^-]+")


def cache_write_error(folder: Path, error: OSError) -> ModelLoadError:
    """The error for a cache that cannot be written (read-only, full, not a directory...)."""
    return ModelLoadError(
        f"cannot write the export cache at {folder}: {error.strerror or error}; point "
        "--cache-dir (or EMBEDSERVE_CACHE_DIR) at a writable directory with free space"
    )


def build_cached(target: Path, build: Callable[[Path], None]) -> Path:
    """Return `target` (a file alone in its cache folder), building it first if missing: `build`
    writes into a staging folder beside it, which is then renamed into place, so a crash or a
    concurrent start never leaves a half-written artefact. Dead builders' staging folders are
    removed first; a cache that cannot be written is a `ModelLoadError` naming --cache-dir."""
    if target.is_file():
        return target
    folder = target.parent.parent
    try:
        # A folder without its artefact is never left by a build (someone removed the file).
        if target.parent.exists() and not target.is_file():
            set_aside(target.parent, f"{target.name} is missing")
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_builds(folder)
        staging = Path(tempfile.mkdtemp(prefix=f".build-{os.getpid()}-{_HOST}-", dir=folder))
    except OSError as error:
        raise cache_write_error(folder, error) from error
    try:
        build(staging / target.name)
        try:
            os.replace(staging, target.parent)
        except OSError:
            if not target.is_file():  # another process did not win the race either
                raise
    except OSError as error:
        if error.errno not in _WRITE_ERRNOS:
            raise
        raise cache_write_error(folder, error) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def open_cached(
    target: Path,
    build: Callable[[Path], None],
    open_fn: Callable[[Path], T],
    *,
    prepare: Callable[[], object] | None = None,
) -> T:
    """`open_fn(target)`, building `target` first if missing (see `build_cached`). A cached
    artefact that fails to open is set aside and rebuilt once; a built one that fails to open is
    a `ModelLoadError`. `prepare` runs before any build (e.g. to heal the input it reads)."""
    cached = target.is_file()
    if cached:
        try:
            return open_fn(target)
        except Exception as error:
            summary = " ".join(f"{type(error).__name__}: {error}".split())[:400]
            set_aside(target.parent, f"{target.name} cannot be opened ({summary})")
    if prepare is not None:
        prepare()
    build_cached(target, build)
    try:
        return open_fn(target)
    except Exception as error:
        state = "rebuilt after the cached one failed to open" if cached else "just built"
        raise ModelLoadError(f"cannot open {target} ({state}): {error}") from error


def set_aside(folder: Path, reason: str) -> None:
    """Rename a broken cache folder to a `<name>.corrupt-<unix time>` sibling, logging why."""
    stamp = int(time.time())
    aside = folder.with_name(f"{folder.name}.corrupt-{stamp}")
    count = 0
    while aside.exists():
        count += 1
        aside = folder.with_name(f"{folder.name}.corrupt-{stamp}-{count}")
    log.warning(
        "cached artefact %s: %s; moving it aside to %s and rebuilding", folder, reason, aside
    )
    try:
        os.rename(folder, aside)
    except FileNotFoundError:
        pass  # another process set it aside first
    except OSError as error:
        raise cache_write_error(folder.parent, error) from error


def remove_stale_builds(folder: Path) -> None:
    """Delete the staging folders in `folder` left by builders that died: this host's whose pid
    is not running, and (other hosts', or unnamed) ones older than `STALE_BUILD_S`."""
    for staging in folder.glob(".build-*"):
        match = _STAGING_NAME.fullmatch(staging.name)
        try:
            if match and match["host"] in (None, _HOST):
                stale = not pid_alive(int(match["pid"]))
            else:
                stale = time.time() - staging.stat().st_mtime > STALE_BUILD_S
        except OSError:
            continue
        if stale:
            log.info("removing %s, a partial build whose process is gone", staging)
            shutil.rmtree(staging, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (ours counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # it exists, under another user
    except (ProcessLookupError, OverflowError):
        return False
    return True
