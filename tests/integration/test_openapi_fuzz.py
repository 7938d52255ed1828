"""The OpenAPI document states what the server really does, and a schema-driven fuzzer holds the
server to it: schemathesis generates valid and invalid requests for every documented operation
of a real `embedserve serve --backend fake` process (the bundled model's real tokenizer, fake
vectors) and checks each answer: no 5xx, a documented status, content type, headers and body,
and invalid data refused.

The default run sends ~1,300 requests (about 30 s on 2 cores); set EMBEDSERVE_FUZZ_EXAMPLES
to the number of authenticated requests wanted (e.g. 20000) for a longer, randomised run."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from embedserve.api import create_app
from embedserve.api.middleware import is_open_path
from embedserve.engine import Engine
from embedserve.models import ModelSpec
from embedserve.settings import ServerSettings
from tests.conftest import ServerProcess, fake_runner, start_server

AnyCase = Case[Any]
AnyOperation = APIOperation[Any, Any, Any, Any]
API_KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
DEFAULT_EXAMPLES = 1200
EXAMPLES = int(os.environ.get("EMBEDSERVE_FUZZ_EXAMPLES") or DEFAULT_EXAMPLES)
MIN_REQUESTS = int(EXAMPLES * 0.9)  # the weights round; a plan is never sent short by more
UNAUTHENTICATED_EXAMPLES = 10  # per operation, without the key
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


# --- the document ------------------------------------------------------------------------------


def document(bundled_spec: ModelSpec, settings: ServerSettings | None = None) -> dict[str, Any]:
    runner, _ = fake_runner(bundled_spec)
    app = create_app(Engine([runner]), settings, manage_engine=False)
    return app.openapi()


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_request_bodies_state_the_real_rules(bundled_spec: ModelSpec) -> None:
    doc = document(bundled_spec)
    for path in ("/v1/embeddings", "/tokenize"):
        body = doc["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        assert list(body["content"]) == ["application/json"]
    schema = doc["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]
    properties = schema["schema"]["properties"]
    assert schema["schema"]["required"] == ["input"]
    text, texts, tokens, token_lists = properties["input"]["anyOf"]
    assert text == {"type": "string", "minLength": 1}
    assert texts["minItems"] == 1 and texts["items"] == text
    assert tokens["minItems"] == 1 and tokens["items"] == {"type": "integer", "minimum": 0}
    assert token_lists["minItems"] == 1 and token_lists["items"] == tokens
    assert properties["encoding_format"]["anyOf"][0]["enum"] == ["float", "base64"]
    assert properties["dimensions"]["anyOf"][0]["minimum"] == 1
    tokenize = doc["paths"]["/tokenize"]["post"]["requestBody"]["content"]["application/json"]
    assert {"input", "prompt", "model", "add_special_tokens"} <= set(
        tokenize["schema"]["properties"]
    )
    assert "422" not in json.dumps(doc) and "HTTPValidationError" not in json.dumps(doc)


def test_every_operation_documents_its_answers(bundled_spec: ModelSpec) -> None:
    doc = document(bundled_spec)
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    assert set(doc["components"]["schemas"]["ErrorDetail"]["required"]) == {
        "message",
        "type",
        "param",
        "code",
    }
    for method, path, operation in operations(doc):
        responses = operation["responses"]
        statuses = set(responses)
        assert {"200", "408", "431", "500", "503"} <= statuses, (method, path)
        assert ("401" in statuses) is not is_open_path(path, method.upper()), (method, path)
        assert "security" not in operation
        for status, response in responses.items():
            if status != "200":
                (schema,) = response["content"].values()
                assert error_ref in (schema["schema"], *schema["schema"].get("allOf", ()))
        if method == "post":
            assert {"400", "404", "413", "429", "504"} <= statuses, path
            assert responses["429"]["headers"]["Retry-After"]["required"] is True
            timeout = responses["504"]["content"]["application/json"]["schema"]["allOf"][1]
            assert timeout["properties"]["error"]["properties"]["code"]["enum"] == ["timeout"]
    paths = doc["paths"]
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    for probe in ("/health", "/v2/health/live", "/v2/health/ready"):
        assert set(paths[probe]["get"]["responses"]) == {"200", "408", "431", "500", "503"}
    assert set(paths["/v2/models/{name}/ready"]["get"]["responses"]) == {
        "200",
        "404",
        "408",
        "431",
        "500",
        "503",
    }
    keyed = document(bundled_spec, ServerSettings(api_keys=("k",)))
    assert keyed["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for _, path, operation in operations(keyed):
        assert ("security" in operation) is not is_open_path(path, method.upper())


# --- fuzzing a real server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log_path = tmp_path_factory.mktemp("fuzz") / "server.log"
    args = ["--backend", "fake", "--api-key", API_KEY, "--drain-delay", "0"]
    process = start_server([*args, "--log-level", "warning"], log_path)
    yield process
    process.stop()


@dataclass
class Fuzzing:
    """Requests sent and distinct failures seen (the shortest reproduction of each)."""

    sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: dict[tuple[str, ...], str] = field(default_factory=dict)

    def record(self, key: tuple[str, ...], reproduction: str) -> None:
        known = self.failures.get(key)
        if known is None or len(reproduction) < len(known):
            self.failures[key] = reproduction

    def report(self) -> str:
        return "\n".join(f"{' | '.join(key)}\n    {repro}" for key, repro in self.failures.items())


def header(response: schemathesis.Response, name: str) -> str | None:
    """The first value of a response header (schemathesis keeps lists of values)."""
    values = next((v for k, v in response.headers.items() if k.lower() == name), None)
    return values[0] if values else None


def reproduction(case: AnyCase, response: schemathesis.Response) -> str:
    headers = {k: v for k, v in case.headers.items()} if case.headers else {}
    body = json.dumps(case.body, default=repr) if case.body is not None else "-"
    return (
        f"{case.method} {case.formatted_path} headers={headers} body={body[:500]} "
        f"-> {response.status_code} {header(response, 'content-type')} {response.text[:300]}"
    )


def fuzz(
    operation: AnyOperation,
    mode: GenerationMode,
    examples: int,
    call: Callable[[AnyCase], schemathesis.Response],
    fuzzing: Fuzzing,
) -> None:
    """Send up to `examples` generated requests, validating each answer."""
    label = operation.label

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize="EMBEDSERVE_FUZZ_EXAMPLES" not in os.environ,
        phases=[Phase.explicit, Phase.generate],  # failures are collected, not shrunk
        suppress_health_check=list(HealthCheck),
    )
    def one(case: AnyCase) -> None:
        response = call(case)
        fuzzing.sent[(label, mode.value)] += 1
        fuzzing.statuses[(label, response.status_code)] += 1
        code = ""
        if response.status_code >= 400 and "json" in (header(response, "content-type") or ""):
            code = str(response.json().get("error", {}).get("code"))
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = (label, mode.value, failure.title, str(response.status_code), code)
                fuzzing.record(key, reproduction(case, response))
        sent_id = case.headers.get("x-request-id") if case.headers else None
        echoed = header(response, "x-request-id")
        if sent_id and sent_id.isprintable() and len(sent_id) <= 200 and echoed != sent_id:
            fuzzing.record(
                (label, mode.value, "x-request-id not echoed"), reproduction(case, response)
            )

    one()


def weights(operation: AnyOperation) -> tuple[int, int]:
    """Shares of the examples (positive, negative): bodies have the most to explore; free-form
    path and header strings have nothing that could be negated."""
    raw = operation.definition.raw
    if "requestBody" in raw:
        return 8, 8
    if any(parameter.get("in") == "path" for parameter in raw.get("parameters", [])):
        return 3, 0
    return 1, 0


@pytest.mark.slow
def test_fuzz_every_operation(server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json", headers=AUTH)
    ops: list[AnyOperation] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document must load completely
        ops.append(result.ok())
    assert len(ops) >= 9
    unit = EXAMPLES / sum(sum(weights(op)) for op in ops)
    fuzzing = Fuzzing()
    with requests.Session() as session:

        def keyed(case: AnyCase) -> schemathesis.Response:
            return case.call(session=session, headers=AUTH, timeout=30)

        def anonymous(case: AnyCase) -> schemathesis.Response:
            return case.call(session=session, timeout=30)

        planned: dict[tuple[str, str], int] = {}
        for op in ops:
            for mode, weight in zip(GenerationMode, weights(op), strict=True):
                if weight:
                    planned[(op.label, mode.value)] = math.ceil(weight * unit)
                    fuzz(op, mode, planned[(op.label, mode.value)], keyed, fuzzing)
        authenticated = sum(fuzzing.sent.values())
        for op in ops:  # without the key: 401 where one is needed, the probes still answer
            fuzz(op, GenerationMode.POSITIVE, UNAUTHENTICATED_EXAMPLES, anonymous, fuzzing)
    summary = "\n".join(f"{key}: {count}" for key, count in sorted(fuzzing.statuses.items()))
    print(f"\n{sum(fuzzing.sent.values())} requests, statuses:\n{summary}")
    assert not fuzzing.failures, f"the fuzzer found {len(fuzzing.failures)}:\n{fuzzing.report()}"
    assert authenticated >= MIN_REQUESTS, (authenticated, fuzzing.sent)
    for key, wanted in planned.items():
        assert fuzzing.sent[key] >= wanted // 2, (key, fuzzing.sent[key], wanted)
    assert fuzzing.statuses[("POST /v1/embeddings", 200)] >= 10
    assert fuzzing.statuses[("POST /v1/embeddings", 401)] >= 1
    assert "Traceback" not in server.log(), server.log()[-5000:]


@pytest.mark.slow
def test_undocumented_methods_are_405_envelopes(server: ServerProcess) -> None:
    doc = httpx.get(server.base_url + "/openapi.json", headers=AUTH).json()
    for path, item in doc["paths"].items():
        url = server.base_url + path.replace("{model_id}", "x").replace("{name}", "x")
        for method in {"get", "post", "put", "delete", "patch"} - set(item):
            response = httpx.request(method, url, headers=AUTH)
            assert response.status_code == 405, (method, path, response.text)
            error = response.json()["error"]
            assert error["code"] == "method_not_allowed", (method, path)
            assert set(error) == {"message", "type", "param", "code"}
