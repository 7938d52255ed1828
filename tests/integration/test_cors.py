"""`--cors-allow-origin`: browser clients of the listed origins only; preflights need no key."""

from __future__ import annotations

from embedserve.engine import Engine
from embedserve.models import ModelSpec
from embedserve.settings import ServerSettings
from tests.conftest import fake_runner, serve_in_process

ORIGIN = "https://app.example"
PREFLIGHT = {
    "origin": ORIGIN,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
}


async def test_listed_origin_gets_cors_headers_and_keys_still_apply(
    bundled_spec: ModelSpec,
) -> None:
    runner, _ = fake_runner(bundled_spec)
    settings = ServerSettings(cors_allow_origins=(ORIGIN,), api_keys=("k",))
    async with serve_in_process(Engine([runner]), settings) as client:
        preflight = await client.options("/v1/embeddings", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        no_key = await client.post(
            "/v1/embeddings", json={"input": "x"}, headers={"origin": ORIGIN}
        )
        assert no_key.status_code == 401
        assert no_key.headers["access-control-allow-origin"] == ORIGIN  # the browser can read it
        keyed = await client.post(
            "/v1/embeddings",
            json={"input": "x"},
            headers={"origin": ORIGIN, "authorization": "Bearer k"},
        )
        assert keyed.status_code == 200
        assert keyed.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in keyed.headers["access-control-expose-headers"]
        other = await client.post(
            "/v1/embeddings",
            json={"input": "x"},
            headers={"origin": "https://evil.example", "authorization": "Bearer k"},
        )
        assert "access-control-allow-origin" not in other.headers


async def test_no_cors_headers_by_default(bundled_spec: ModelSpec) -> None:
    runner, _ = fake_runner(bundled_spec)
    async with serve_in_process(Engine([runner])) as client:
        answer = await client.post(
            "/v1/embeddings", json={"input": "x"}, headers={"origin": ORIGIN}
        )
        assert answer.status_code == 200
        assert "access-control-allow-origin" not in answer.headers
        preflight = await client.options("/v1/embeddings", headers=PREFLIGHT)
        assert "access-control-allow-origin" not in preflight.headers
