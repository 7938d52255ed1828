"""The container image's size and its time from `run` to `/health` 200 (median of several
starts), as `make image` built it. Writes benchmarks/results/image.{json,md}.

    .venv/bin/python benchmarks/image.py [--image embedserve:latest] [--starts 5]"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from servers import RESULTS

from embedserve.testing import free_port

ENGINE = [str(Path(__file__).resolve().parents[1] / "scripts" / "image.sh"), "engine"]


def engine(*args: str) -> str:
    done = subprocess.run([*ENGINE, *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_seconds(image: str) -> float:
    """Seconds from `run -d` to the first 200 on /health; the container is removed after."""
    port = free_port()
    name = f"embedserve-bench-{port}"
    started = time.perf_counter()
    engine("run", "-d", "--name", name, "--network", "host", "--ulimit", "host",
           "-e", f"EMBEDSERVE_PORT={port}", image)  # fmt: skip
    try:
        while not healthy(f"http://127.0.0.1:{port}/health"):
            if time.perf_counter() - started > 120:
                raise RuntimeError(engine("logs", name))
            time.sleep(0.02)
        return time.perf_counter() - started
    finally:
        engine("rm", "-f", name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="embedserve:latest")
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    size_mb = int(engine("image", "inspect", args.image, "--format", "{{.Size}}")) / 1e6
    starts = [start_seconds(args.image) for _ in range(args.starts)]
    result = {"image": args.image, "size_mb": size_mb, "start_s": starts}
    markdown = (
        f"| image | size | run to /health 200 (median of {len(starts)}) | min | max |\n"
        "| --- | ---: | ---: | ---: | ---: |\n"
        f"| {args.image} | {size_mb:.0f} MB | {statistics.median(starts):.2f} s "
        f"| {min(starts):.2f} s | {max(starts):.2f} s |\n"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "image.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "image.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
