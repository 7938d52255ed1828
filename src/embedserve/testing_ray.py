"""A real Ray cluster on this machine for the tests and the benchmarks: `ray start --head
--block` and more `ray start --block --address=...` nodes, each with one CPU, in their own
process groups, stopped by pid (never `ray stop`, which would stop every Ray on the machine)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from embedserve.testing import free_port

RAY = str(Path(sys.executable).parent / "ray")
# A throwaway cluster on 127.0.0.1: no token authentication (Ray >= 2.5x turns it on; a real
# cluster keeps it, and its drivers get the token as docs/scale.md says).
UNAUTHENTICATED = {**os.environ, "RAY_AUTH_MODE": "disabled"}
NODE_FLAGS = ["--block", "--num-cpus=1", "--object-store-memory=200000000", "--disable-usage-stats"]
COUNT_NODES = (
    "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
    "print(sum(1 for node in ray.nodes() if node['Alive']))"
)


@dataclass
class RayCluster:
    """The head and worker node processes and the address to give `ray.init`."""

    address: str
    processes: list[subprocess.Popen[bytes]]
    log: Path

    def alive_nodes(self) -> int:
        found = subprocess.run(
            [sys.executable, "-c", COUNT_NODES, self.address],
            env=UNAUTHENTICATED,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        lines = found.stdout.strip().splitlines()
        return int(lines[-1]) if found.returncode == 0 and lines else 0

    def stop(self) -> None:
        """SIGTERM each node's process group, and SIGKILL the group a few seconds later (a
        node drains for up to 30 s otherwise; nothing here needs draining)."""
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        time.sleep(3)
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def start_ray_cluster(log: Path, nodes: int = 2) -> RayCluster:
    """Start `nodes` one-CPU nodes and wait until all are alive."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths are limited
    sink = log.open("ab")
    head = [RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1"]
    head += ["--include-dashboard=false", f"--temp-dir={temp}", *NODE_FLAGS]
    cluster = RayCluster(address, [], log)
    cluster.processes.append(
        subprocess.Popen(
            head, stdout=sink, stderr=sink, env=UNAUTHENTICATED, start_new_session=True
        )
    )
    worker = [RAY, "start", f"--address={address}", "--node-ip-address=127.0.0.1", *NODE_FLAGS]
    deadline = time.monotonic() + 180
    try:
        while cluster.alive_nodes() < 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not start; see {log}")
            time.sleep(1)
        for _ in range(nodes - 1):
            cluster.processes.append(
                subprocess.Popen(
                    worker, stdout=sink, stderr=sink, env=UNAUTHENTICATED, start_new_session=True
                )
            )
        while cluster.alive_nodes() < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray workers did not join; see {log}")
            time.sleep(1)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def processes_titled(title: bytes) -> list[int]:
    """The pids on this machine whose command line holds `title`: Ray titles each actor's
    process by its class (`ray::ServeReplica:app:Deployment`, `ray::_MapWorker`)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and title in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return sorted(found)
