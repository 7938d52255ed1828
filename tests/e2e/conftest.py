"""Fixtures of the real-client tests: the sentence-transformers reference (one per session)
and clients of the session's real server (one per module)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from embedserve.testing_ray import RayCluster, start_ray_cluster
from tests.conftest import ServerProcess
from tests.e2e.shared import TIMEOUT_S, Reference


@pytest.fixture(scope="session")
def reference() -> Reference:
    return Reference()


@pytest.fixture(scope="module")
def client(real_server: ServerProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=real_server.base_url + "/v1", api_key="unused", max_retries=0, timeout=TIMEOUT_S
    ) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def http(real_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=real_server.base_url, timeout=TIMEOUT_S) as raw:
        yield raw


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A real two-node Ray cluster (one CPU each) for the tests of one module."""
    started = start_ray_cluster(tmp_path_factory.mktemp("ray") / "ray.log")
    yield started
    started.stop()
