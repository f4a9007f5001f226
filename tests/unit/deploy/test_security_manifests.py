"""deploy/security: default deny, only the paths Kith needs, one Kafka principal per topic owner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kith.common.config import DEFAULT_GRPC_PORTS, SERVICES
from tests.unit.deploy.kustomize import render

SECURITY = Path(__file__).resolve().parents[3] / "deploy" / "security"


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(SECURITY)


def _policies(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}


def _named(selector: dict[str, Any]) -> set[str]:
    if "matchLabels" in selector:
        return {selector["matchLabels"]["app.kubernetes.io/name"]}
    (expr,) = selector["matchExpressions"]
    return set(expr["values"])


def test_policies_validate_and_deny_by_default(docs: list[dict[str, Any]]) -> None:
    policies = _policies(docs)
    for policy in policies.values():
        kubernetes_validate.validate(policy, "1.32", strict=True)
    deny = policies["kith-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
    assert {*SERVICES, "gateway", "feed-fanout"} <= _named(deny["podSelector"])


def test_each_service_is_reached_only_by_its_callers_on_its_port(
        docs: list[dict[str, Any]]) -> None:
    policies = _policies(docs)
    for svc in SERVICES:
        (rule,) = policies[f"{svc}-from-callers"]["spec"]["ingress"]
        (source,) = rule["from"]
        assert "namespaceSelector" not in source  # nobody outside the namespace
        assert "gateway" in _named(source["podSelector"])
        assert rule["ports"] == [{"protocol": "TCP", "port": DEFAULT_GRPC_PORTS[svc]}]
    graph_callers = policies["graph-from-callers"]["spec"]["ingress"][0]["from"][0]
    assert _named(graph_callers["podSelector"]) == {"gateway", "post", "messaging"}
    identity_callers = policies["identity-from-callers"]["spec"]["ingress"][0]["from"][0]
    assert _named(identity_callers["podSelector"]) == {"gateway", "feed"}
    # Only the gateway is reachable from outside (the ingress controller).
    outside = [name for name, p in policies.items() for rule in p["spec"].get("ingress", [])
               for src in rule.get("from", []) if "namespaceSelector" in src
               and "ingress" in str(src)]
    assert outside == ["gateway-from-ingress"]


def test_a_service_writes_only_its_own_topic(docs: list[dict[str, Any]]) -> None:
    users = {d["metadata"]["name"]: d for d in docs if d["kind"] == "KafkaUser"}
    for svc in SERVICES:
        acls = users[f"kith-{svc}"]["spec"]["authorization"]["acls"]
        written = {a["resource"]["name"] for a in acls
                   if a["resource"]["type"] == "topic" and "Write" in a["operations"]}
        assert written == {f"{svc}.events.v1"}
        assert users[f"kith-{svc}"]["spec"]["authentication"]["type"] == "scram-sha-512"
    writers = {name for name, u in users.items() for a in u["spec"]["authorization"]["acls"]
               if a["resource"].get("name") == "identity.events.v1" and "Write" in a["operations"]}
    assert writers == {"kith-identity"}


def test_every_service_gets_a_postgres_role_of_its_own() -> None:
    patch = yaml.safe_load((SECURITY / "postgres-roles-patch.yaml").read_text())
    roles = {r["name"]: r for r in patch["spec"]["managed"]["roles"]}
    assert set(roles) == {f"kith_{s}" for s in (*SERVICES, "gateway")}
    assert all(r["login"] and "superuser" not in r for r in roles.values())
