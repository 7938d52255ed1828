"""The manifests in docs/scale.md are what they claim: the RayService's Serve config is valid
for Ray's schema and our builder takes its args; the RayJob's entrypoint and the Deployment's
command parse with our command line; the grace period covers the drain."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from embedserve.cli import build_parser
from embedserve.ray_replicas import build
from embedserve.settings import ServerSettings, serve_options

SCALE_DOC = Path(__file__).parents[2] / "docs" / "scale.md"


def manifest(kind: str) -> dict[str, Any]:
    """The YAML document of docs/scale.md whose `kind` is `kind`."""
    for block in re.findall(r"```yaml\n(.*?)```", SCALE_DOC.read_text(), flags=re.S):
        for document in yaml.safe_load_all(block):
            if isinstance(document, dict) and document.get("kind") == kind:
                return document
    raise AssertionError(f"no {kind} manifest in {SCALE_DOC}")


def test_rayservice_is_a_valid_serve_config_our_builder_takes() -> None:
    from ray.serve.schema import ServeDeploySchema

    config = yaml.safe_load(manifest("RayService")["spec"]["serveConfigV2"])
    (app,) = ServeDeploySchema.model_validate(config).applications
    assert app.import_path == "embedserve.ray_replicas:build"
    (shape,) = app.deployments
    bound = build({key: value for key, value in app.args.items() if key != "model"})
    assert shape.name == bound._bound_deployment.name == "EmbedReplica"
    assert shape.autoscaling_config["min_replicas"] >= 1
    assert set(app.args) <= {option.name for option in serve_options()}


def test_rayjob_entrypoint_is_our_embed_command_on_ray() -> None:
    words = shlex.split(manifest("RayJob")["spec"]["entrypoint"])
    assert words[0] == "embedserve"
    args = build_parser().parse_args(words[1:])
    assert (args.command, args.ray, args.num_actors) == ("embed", "auto", 8)


def test_deployment_command_parses_and_the_grace_period_covers_the_drain() -> None:
    spec = manifest("Deployment")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    args = build_parser().parse_args(container["command"][1:])
    assert args.command == "serve"
    settings = ServerSettings()
    drain = settings.drain_delay_s + settings.shutdown_timeout_s
    assert spec["terminationGracePeriodSeconds"] > drain
    paths = {
        probe["httpGet"]["path"]
        for probe in (container["readinessProbe"], container["livenessProbe"])
    }
    assert paths == {"/v2/health/ready", "/v2/health/live"}
    service = manifest("Service")["spec"]
    assert service["selector"] == manifest("Deployment")["spec"]["selector"]["matchLabels"]
