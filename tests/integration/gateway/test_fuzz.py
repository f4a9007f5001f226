"""Schemathesis fuzzing of the generated OpenAPI document against the running gateway.

Every operation gets schema-conforming and schema-violating requests, signed
in as a real user whose niche, post and conversation ids are offered as
examples; the only assertion is that nothing ever answers with a 5xx.
"""

from __future__ import annotations

import contextlib
import zlib
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.generation import GenerationMode

from tests.integration.gateway.harness import Gateway, served_gateway

EXAMPLES_PER_OPERATION = 12
STREAM = ("GET", "/v1/stream")  # the stream server's (test_the_stream_server_never_fails)
SKIP = {STREAM,
        # these would end the fuzzing user's session
        ("DELETE", "/v1/me"), ("DELETE", "/v1/sessions/current"), ("POST", "/v1/me/password")}


@pytest.fixture(scope="module")
def signed_in(gateway: Gateway) -> dict[str, str]:
    owner = gateway.signup("fuzzy")
    friend = gateway.signup("fuzzier")
    niche = owner.post("/v1/niches", {"name": "Fuzz", "kind": "custom"}).json()
    code = owner.post(f"/v1/niches/{niche['id']}/invites", {"max_uses": 5}).json()["code"]
    friend.post(f"/v1/invites/{code}/accept")
    post = owner.post(f"/v1/niches/{niche['id']}/posts", {"text": "fuzz me"}).json()
    conv = owner.post("/v1/conversations", {"member_ids": [friend.user_id]}).json()
    return {"Authorization": f"Bearer {owner.token}", "niche_id": niche["id"],
            "post_id": post["id"], "conversation_id": conv["id"], "user_id": friend.user_id}


def test_no_input_makes_the_gateway_fail(gateway: Gateway, signed_in: dict[str, str]) -> None:
    spec = gateway.client().get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    failures: list[str] = []
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        checked += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, gateway.url, signed_in, failures)
    assert checked >= 35
    assert failures == [], "\n".join(failures[:20])


def test_no_input_makes_the_stream_server_fail(gateway: Gateway,
                                               signed_in: dict[str, str]) -> None:
    # Streams that end at once (and a cap no sequence of cases reaches), so a case that opens
    # one is answered, not held open.
    with served_gateway(gateway.settings, stream_max_s=0.2, streams_per_user=50) as origin:
        spec = gateway.client().get("/openapi.json").json()
        failures: list[str] = []
        fuzzed = 0
        for result in schemathesis.openapi.from_dict(spec).get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) == STREAM:
                fuzzed += 1
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    _fuzz(operation, mode, origin, signed_in, failures)
        assert fuzzed == 1 and failures == [], "\n".join(failures[:20])


def _fuzz(operation: Any, mode: GenerationMode, url: str, auth: dict[str, str],
          failures: list[str]) -> None:
    @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck), derandomize=True,
                         phases=[hypothesis.Phase.generate])
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        for name in ("niche_id", "post_id", "conversation_id", "user_id"):
            # Half the cases aim at real resources, so handlers run past "not found".
            if case.path_parameters and name in case.path_parameters and \
                    zlib.crc32(str(case.path_parameters[name]).encode()) % 2:
                case.path_parameters[name] = auth[name]
        response = case.call(base_url=url, headers={"Authorization": auth["Authorization"]},
                             timeout=15)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                            f"{response.text[:200]} body={case.body!r:.200}")

    # Unsatisfiable: nothing to violate (negative cases of an operation without inputs).
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        run()
