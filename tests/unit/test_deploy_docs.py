"""docs/deploy.md and the Containerfile are what they claim: the Deployment's variables are
settings the server knows, its grace period covers the drain it configures, its probes are
routes of the app; the systemd unit waits long enough; the image runs the server as PID 1 as a
non-root user with a health check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from embedserve.api.app import create_app
from embedserve.engine import Engine
from embedserve.models import ModelSpec
from embedserve.settings import ServerSettings, serve_options
from tests.conftest import fake_runner

ROOT = Path(__file__).parents[2]
DEPLOY_DOC = ROOT / "docs" / "deploy.md"


def documents(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.S)


def manifest(kind: str) -> dict[str, Any]:
    for block in documents(DEPLOY_DOC, "yaml"):
        for document in yaml.safe_load_all(block):
            if isinstance(document, dict) and document.get("kind") == kind:
                return document
    raise AssertionError(f"no {kind} manifest in {DEPLOY_DOC}")


def app_paths(spec: ModelSpec) -> set[str]:
    runner, _ = fake_runner(spec)
    app = create_app(Engine([runner]), manage_engine=False)
    return set(app.openapi()["paths"])


def test_the_deployment_configures_known_settings_and_waits_out_the_drain(
    bundled_spec: ModelSpec,
) -> None:
    spec = manifest("Deployment")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    known = {name for option in serve_options() for name in option.env_vars}
    assert {name for name in env if name.startswith("EMBEDSERVE_")} <= known
    defaults = ServerSettings()
    drain = float(env.get("EMBEDSERVE_DRAIN_DELAY", defaults.drain_delay_s))
    shutdown = float(env.get("EMBEDSERVE_SHUTDOWN_TIMEOUT", defaults.shutdown_timeout_s))
    assert spec["terminationGracePeriodSeconds"] > drain + shutdown
    readiness = container["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < drain
    probes = ("startupProbe", "readinessProbe", "livenessProbe")
    assert {container[probe]["httpGet"]["path"] for probe in probes} <= app_paths(bundled_spec)
    assert spec["securityContext"]["runAsUser"] == 10001
    service = manifest("Service")["spec"]
    assert service["selector"] == manifest("Deployment")["spec"]["selector"]["matchLabels"]


def test_the_systemd_unit_waits_out_the_drain() -> None:
    (unit,) = documents(DEPLOY_DOC, "ini")
    stop = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, flags=re.M).group(1))  # type: ignore[union-attr]
    defaults = ServerSettings()
    assert stop > defaults.drain_delay_s + defaults.shutdown_timeout_s
    assert "ExecStart=/opt/embedserve/bin/embedserve serve" in unit


def test_the_containerfile_runs_the_server_as_pid_1_unprivileged() -> None:
    text = (ROOT / "Containerfile").read_text()
    runtime = text.split("# Runtime stage", 1)[1]
    assert 'ENTRYPOINT ["/opt/embedserve/bin/embedserve", "serve"]' in runtime  # exec form
    assert re.search(r"^USER 10001:10001$", runtime, flags=re.M)
    assert "HEALTHCHECK" in runtime and "/health" in runtime
    assert "EXPOSE 8000" in runtime and "HF_HUB_OFFLINE=1" in runtime
    assert "[export]" not in runtime  # no PyTorch in the image that runs
