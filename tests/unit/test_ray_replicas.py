"""`serve --ray`'s pieces that need no cluster: the flags, the deployment's scaling and
resources, and the response headers (the manifests: test_scale_docs.py)."""

from __future__ import annotations

import pytest
from starlette.types import Message, Receive, Scope, Send

from embedserve.cli import build_parser, main
from embedserve.ray_replicas import (
    REPLICA_HEADER,
    ReplicaHeaders,
    ReplicaOptions,
    deployment,
    replica_options,
)
from embedserve.settings import ServerSettings


def options_of(*argv: str) -> ReplicaOptions | None:
    return replica_options(build_parser().parse_args(["serve", *argv]))


def test_flags_become_options() -> None:
    assert options_of() is None
    assert options_of("--ray") == ReplicaOptions(address=None)
    given = options_of("--ray", "10.0.0.1:6379", "--replicas", "3", "--max-replicas", "6")
    assert given == ReplicaOptions(address="10.0.0.1:6379", replicas=3, max_replicas=6)
    gpus = options_of("--ray", "auto", "--gpus-per-replica", "0.5", "--cpus-per-replica", "2")
    assert gpus == ReplicaOptions(address="auto", cpus_per_replica=2.0, gpus_per_replica=0.5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--replicas", "2"], "--replicas needs --ray"),
        (["--ray", "--replicas", "0"], "--replicas must be at least 1"),
        (["--ray", "--replicas", "3", "--max-replicas", "2"], "at least --replicas"),
        (["--ray", "--cpus-per-replica", "0"], "--cpus-per-replica must be above 0"),
        (["--ray", "--target-ongoing-requests", "0"], "above 0"),
    ],
)
def test_bad_ray_flags_exit_2_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["serve", *argv])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_fixed_replicas_with_the_servers_limits() -> None:
    settings = ServerSettings(max_concurrent_requests=64, shutdown_timeout_s=12)
    shaped = deployment(settings, ReplicaOptions(replicas=3, gpus_per_replica=1))
    assert shaped.num_replicas == 3
    assert shaped.max_ongoing_requests == 64  # Ray queues the rest; the app never says 429
    threads = {"OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1"}  # the tokenizers' too
    assert shaped.ray_actor_options == {
        "num_cpus": 1.0,
        "num_gpus": 1.0,
        "runtime_env": {"env_vars": threads},
    }
    assert shaped._deployment_config.graceful_shutdown_timeout_s == 12
    assert shaped._deployment_config.autoscaling_config is None


def test_max_replicas_autoscales_from_replicas() -> None:
    options = ReplicaOptions(replicas=2, max_replicas=5, target_ongoing_requests=24)
    autoscaling = deployment(ServerSettings(), options)._deployment_config.autoscaling_config
    assert (autoscaling.min_replicas, autoscaling.initial_replicas) == (2, 2)
    assert autoscaling.max_replicas == 5
    assert autoscaling.target_ongoing_requests == 24


async def test_headers_name_the_replica_and_leave_the_request_id_to_ray() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain"), (b"x-request-id", b"abc")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    await ReplicaHeaders(app, "r1")({"type": "http"}, receive, send)
    start = dict(sent[0]["headers"])
    assert start == {b"content-type": b"text/plain", REPLICA_HEADER.encode(): b"r1"}
    assert sent[1]["body"] == b"ok"
