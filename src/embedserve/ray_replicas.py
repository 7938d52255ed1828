"""`embedserve serve --ray`: the same app as a Ray Serve deployment, N replicas (each its own
engine) behind Ray's HTTP proxy.

Each replica loads its engine in its constructor, so Ray routes to it only once it is ready,
and `check_health` reports a dead device thread, so Ray replaces the replica. The app, its
routes, errors and limits are `create_app`'s; connections are Ray's proxy's. `build` is the
import path for a Serve config file (KubeRay's RayService): `embedserve.ray_replicas:build`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from dataclasses import dataclass, fields
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from embedserve.api import create_app
from embedserve.backends.base import thread_limits_env
from embedserve.engine import Engine
from embedserve.logs import configure_logging
from embedserve.settings import ServerSettings, settings_from_sources

log = logging.getLogger("embedserve")
APP_NAME = "embedserve"
REPLICA_HEADER = "x-embedserve-replica"


@dataclass(frozen=True)
class ReplicaOptions:
    """Where the cluster is and how many engines serve, with what resources each."""

    address: str | None = None  # None: start a local Ray instance
    replicas: int = 1
    max_replicas: int | None = None  # above `replicas`: autoscale between the two
    target_ongoing_requests: float = 16.0
    cpus_per_replica: float = 1.0
    gpus_per_replica: float = 0.0

    def check(self) -> None:
        """Refuse shapes Ray would only fail on later."""
        if self.replicas < 1:
            raise ValueError("--replicas must be at least 1")
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError("--max-replicas must be at least --replicas")
        if self.target_ongoing_requests <= 0:
            raise ValueError("--target-ongoing-requests must be above 0")
        if self.cpus_per_replica <= 0 or self.gpus_per_replica < 0:
            raise ValueError("--cpus-per-replica must be above 0, --gpus-per-replica at least 0")


def add_ray_flags(serve: argparse.ArgumentParser) -> None:
    """`serve`'s Ray flags (command line only: no `EMBEDSERVE_*` variables). A flag not given
    is absent from the parsed arguments, as the settings' flags are."""
    ray = serve.add_argument_group("Ray Serve (pip install 'embedserve[ray]')")
    ray.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="serve replicas on a Ray cluster behind Ray's HTTP proxy "
        "(`auto`, `HOST:PORT`, `ray://...`; no address: a local Ray)",
        default=argparse.SUPPRESS,
    )
    flags: list[tuple[str, type, str]] = [
        ("--replicas", int, "engines serving (default 1)"),
        ("--max-replicas", int, "autoscale between --replicas and this many (default: fixed)"),
        ("--target-ongoing-requests", float, "autoscaling: requests in progress per replica "
         "that Ray aims for (default 16)"),
        ("--cpus-per-replica", float, "CPUs each engine gets (default 1)"),
        ("--gpus-per-replica", float, "GPUs each engine gets (default 0)"),
    ]  # fmt: skip
    for flag, kind, help_text in flags:
        ray.add_argument(flag, type=kind, help=help_text, default=argparse.SUPPRESS)


def replica_options(args: argparse.Namespace) -> ReplicaOptions | None:
    """Take the Ray flags out of `args`; None without `--ray` (then a Ray flag is an error)."""
    names = [field.name for field in fields(ReplicaOptions) if field.name != "address"]
    given = {name: vars(args).pop(name) for name in names if name in vars(args)}
    if "ray" not in vars(args):
        if given:
            raise ValueError(f"--{next(iter(given)).replace('_', '-')} needs --ray")
        return None
    address = vars(args).pop("ray")
    return ReplicaOptions(address=None if address == "local" else address, **given)


class ReplicaHeaders:
    """Names the replica that answered each response (`x-embedserve-replica`), and leaves
    `x-request-id` to Ray's proxy, which adds the same id (the one the app was given)."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app = app
        self.replica = replica.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"x-request-id"
                ]
                headers.append((REPLICA_HEADER.encode(), self.replica))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, named)


class EmbedReplica:
    """One Ray Serve replica: an engine, loaded before the replica takes traffic."""

    async def __init__(self, settings: ServerSettings) -> None:  # type: ignore[misc]
        configure_logging(settings.log_level, settings.log_format, only_ours=True)
        self._settings = settings
        self._engine = Engine.from_settings(settings)
        await self._engine.start()

    def __serve_build_asgi_app__(self) -> ASGIApp:
        from ray import serve

        replica = serve.get_replica_context().replica_id.unique_id
        app = create_app(self._engine, self._settings, manage_engine=False)
        return ReplicaHeaders(app, str(replica))

    async def check_health(self) -> None:
        """Ray's health check: a replica whose device thread died is replaced."""
        if not self._engine.alive:
            raise RuntimeError("; ".join(self._engine.unready_reasons()) or "engine not alive")

    async def __del__(self) -> None:
        await self._engine.stop()


def application(settings: ServerSettings, options: ReplicaOptions) -> Any:
    """The Serve application: `deployment(...)` bound to the settings."""
    return deployment(settings, options).bind(settings)


def deployment(settings: ServerSettings, options: ReplicaOptions) -> Any:
    """`EmbedReplica` as a Serve deployment with its scaling, resources and shutdown."""
    from ray import serve

    scaling: dict[str, Any] = {"num_replicas": options.replicas}
    if options.max_replicas is not None and options.max_replicas > options.replicas:
        scaling = {
            "autoscaling_config": {
                "min_replicas": options.replicas,
                "initial_replicas": options.replicas,
                "max_replicas": options.max_replicas,
                "target_ongoing_requests": options.target_ongoing_requests,
            }
        }
    return serve.deployment(
        serve.ingress()(EmbedReplica),
        name="EmbedReplica",
        max_ongoing_requests=settings.max_concurrent_requests,
        graceful_shutdown_timeout_s=settings.shutdown_timeout_s,
        ray_actor_options={
            "num_cpus": options.cpus_per_replica,
            "num_gpus": options.gpus_per_replica,
            "runtime_env": {"env_vars": thread_limits_env(options.cpus_per_replica)},
        },
        **scaling,
    )


def build(args: dict[str, Any]) -> Any:
    """Serve config builder (`import_path: embedserve.ray_replicas:build`): `args` holds serve
    settings by field name (`model`, `backend`, ...) over `EMBEDSERVE_*`; replicas and resources
    come from the config's `deployments` section."""
    given = dict(args)
    if isinstance(given.get("model"), str):
        given["model"] = [given["model"]]
    return application(settings_from_sources(given), ReplicaOptions())


def serve_on_ray(settings: ServerSettings, options: ReplicaOptions) -> int:
    """Deploy on the cluster, serve until SIGTERM/SIGINT, then delete the app (and Serve, when
    no other app is left); returns the exit code."""
    import ray
    from ray import serve

    configure_logging(settings.log_level, settings.log_format)
    options.check()
    ray.init(address=options.address, logging_level=logging.WARNING)
    try:
        serve.start(http_options=_http_options(settings))
        try:
            serve.run(application(settings, options), name=APP_NAME, route_prefix="/")
        except RuntimeError as error:
            log.error("the deployment failed: %s", error)
            return 1
        scheme = "https" if settings.ssl_certfile else "http"
        log.info(
            "serving %s on %d replica%s behind Ray's proxy at %s://%s:%d",
            ", ".join(str(model.path or "the bundled model") for model in settings.models),
            options.replicas,
            "" if options.replicas == 1 else "s",
            scheme,
            settings.host,
            settings.port,
        )
        _wait_for_signal()
        log.info("stopping: deleting the %r Serve application", APP_NAME)
        serve.delete(APP_NAME)
        if not serve.status().applications:
            serve.shutdown()  # type: ignore[no-untyped-call]
        return 0
    finally:
        ray.shutdown()


def _http_options(settings: ServerSettings) -> dict[str, Any]:
    """Ray's proxy listens where `serve` would; TLS and keep-alive carry over."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "root_path": settings.root_path,
        "keep_alive_timeout_s": max(1, round(settings.keep_alive_timeout_s)),
    }
    if settings.ssl_certfile and settings.ssl_keyfile:
        options |= {"ssl_certfile": str(settings.ssl_certfile)}
        options |= {"ssl_keyfile": str(settings.ssl_keyfile)}
    return options


def _wait_for_signal() -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("%s received", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    while not stop.wait(1.0):
        pass
