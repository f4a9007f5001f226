"""deploy/security (wired into the production overlay as a Component): default deny, only the
paths Kith needs, one Kafka principal per topic owner, one PostgreSQL role per service. Every
list is derived from kith.common.config.SERVICES, so a new service cannot be forgotten."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from kith.cli.keys import HOLDERS as KEY_HOLDERS
from kith.common.config import DATABASES, DEFAULT_GRPC_PORTS, SERVICES
from tests.unit.deploy.test_kubernetes import DEPLOY, of_kind, rendered

SECURITY = DEPLOY / "security"
PROCESSES = {*SERVICES, "feed-fanout", "gateway", "gateway-stream"}
# Who calls whom over gRPC (besides the gateway, which calls every service, and its stream
# server, which calls those of STREAM_CALLS to confirm each event per reader).
STREAM_CALLS = {"identity", "graph", "post", "messaging", "media"}
CALLERS = {"identity": {"feed"}, "graph": {"post", "messaging", "media", "feed"},
           "post": {"feed", "media"}, "messaging": {"media"}, "feed": set(), "media": {"feed"}}
# The topics each service's projections and in-process tails consume
# (services/<name>/entrypoint.py; feed's page cache tails identity and media too).
READS = {"identity": set(), "graph": {"identity"}, "post": {"identity"},
         "messaging": {"identity", "messaging"},
         "feed": {"graph", "post", "identity", "media"},
         "media": {"identity", "post"}}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return rendered("overlays/production")


def _policies(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return of_kind(docs, "NetworkPolicy")


def _named(selector: dict[str, Any]) -> set[str]:
    if "matchLabels" in selector:
        return {selector["matchLabels"]["app.kubernetes.io/name"]}
    (expr,) = selector["matchExpressions"]
    return set(expr["values"])


def test_the_tables_above_cover_every_service() -> None:
    assert set(CALLERS) == set(READS) == set(SERVICES)


def test_policies_validate_and_deny_by_default(docs: list[dict[str, Any]]) -> None:
    policies = _policies(docs)
    for policy in policies.values():
        kubernetes_validate.validate(policy, "1.32", strict=True)
    deny = policies["kith-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
    assert _named(deny["podSelector"]) == {*PROCESSES, "kith-migrate"}
    assert _named(policies["kith-dns"]["spec"]["podSelector"]) == {*PROCESSES, "kith-migrate"}
    assert _named(policies["kith-metrics-from-monitoring"]["spec"]["podSelector"]) == PROCESSES
    (to_pg, *_) = policies["kith-pg-from-kith"]["spec"]["ingress"]
    assert _named(to_pg["from"][0]["podSelector"]) == {*PROCESSES, "kith-migrate"}


def test_each_service_is_reached_only_by_its_callers_on_its_port(
        docs: list[dict[str, Any]]) -> None:
    policies = _policies(docs)
    for svc in SERVICES:
        (rule,) = policies[f"{svc}-from-callers"]["spec"]["ingress"]
        (source,) = rule["from"]
        assert "namespaceSelector" not in source  # nobody outside the namespace
        stream = {"gateway-stream"} if svc in STREAM_CALLS else set()
        assert _named(source["podSelector"]) == {"gateway", *stream, *CALLERS[svc]}, svc
        assert rule["ports"] == [{"protocol": "TCP", "port": DEFAULT_GRPC_PORTS[svc]}]
    # Only the gateway and its stream server are reachable from outside (the ingress controller).
    outside = [name for name, p in policies.items() for rule in p["spec"].get("ingress", [])
               for src in rule.get("from", []) if "namespaceSelector" in src
               and "ingress" in str(src)]
    assert outside == ["gateway-from-ingress", "gateway-stream-from-ingress"]


def _grpc_egress(policy: dict[str, Any]) -> tuple[set[str], set[int]]:
    """The services a pod may call over gRPC, and on which ports."""
    callees: set[str] = set()
    ports: set[int] = set()
    for rule in policy["spec"]["egress"]:
        for peer in rule["to"]:
            if "app.kubernetes.io/name" in str(peer):
                callees |= _named(peer["podSelector"])
                ports |= {p["port"] for p in rule["ports"]}
    return callees, ports


def test_each_process_may_call_exactly_the_services_it_needs(
        docs: list[dict[str, Any]]) -> None:
    policies = _policies(docs)
    assert _grpc_egress(policies["gateway-egress"]) == (
        set(SERVICES), set(DEFAULT_GRPC_PORTS.values()))
    assert _grpc_egress(policies["gateway-stream-egress"]) == (
        STREAM_CALLS, {DEFAULT_GRPC_PORTS[s] for s in STREAM_CALLS})
    for svc in SERVICES:
        callees = {callee for callee, callers in CALLERS.items() if svc in callers}
        assert _grpc_egress(policies[f"{svc}-egress"]) == (
            callees, {DEFAULT_GRPC_PORTS[c] for c in callees}), svc
        egress = policies[f"{svc}-egress"]["spec"]["egress"]
        reached = {p for rule in egress for p in (x["port"] for x in rule["ports"])}
        assert {5432, 9092} <= reached  # its database and Kafka


def test_a_service_writes_only_its_own_topic_and_reads_what_it_consumes(
        docs: list[dict[str, Any]]) -> None:
    users = of_kind(docs, "KafkaUser")
    for svc in SERVICES:
        acls = users[f"kith-{svc}"]["spec"]["authorization"]["acls"]
        topics = [a for a in acls if a["resource"]["type"] == "topic"]
        assert {a["resource"]["name"] for a in topics if "Write" in a["operations"]} == {
            f"{svc}.events.v1"}
        assert {a["resource"]["name"] for a in topics if "Read" in a["operations"]} == {
            f"{s}.events.v1" for s in READS[svc]}, svc
        assert users[f"kith-{svc}"]["spec"]["authentication"]["type"] == "scram-sha-512"
    writers = {name for name, u in users.items() for a in u["spec"]["authorization"]["acls"]
               if a["resource"].get("name") == "identity.events.v1" and "Write" in a["operations"]}
    assert writers == {"kith-identity"}


def test_production_kafka_authenticates_and_authorizes_every_process(
        docs: list[dict[str, Any]]) -> None:
    (kafka,) = of_kind(docs, "Kafka").values()
    (plain,) = [x for x in kafka["spec"]["kafka"]["listeners"] if x["port"] == 9092]
    assert plain["authentication"] == {"type": "scram-sha-512"}
    assert kafka["spec"]["kafka"]["authorization"] == {"type": "simple"}
    assert "userOperator" in kafka["spec"]["entityOperator"]  # it writes the users' Secrets
    config = of_kind(docs, "ConfigMap")["kith-config"]["data"]
    assert config["KITH_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert config["KITH_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    users = of_kind(docs, "KafkaUser")
    principals = {**{p: f"kith-{p}" for p in PROCESSES}, "feed-fanout": "kith-feed"}
    workloads = {**of_kind(docs, "Deployment"), **of_kind(docs, "Job")}
    # The Flask gateway reads no topic (its stream server does): no principal, no route.
    (gateway,) = workloads.pop("gateway")["spec"]["template"]["spec"]["containers"]
    assert "KITH_KAFKA_SASL_USERNAME" not in {e["name"] for e in gateway["env"]}
    assert "kith-gateway" not in users
    del principals["gateway"]
    principals |= {name: "kith-infra" for name in workloads if name.startswith("kith-migrate-")}
    assert set(principals) == set(workloads)
    for name, user in principals.items():
        (c,) = workloads[name]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in c["env"]}
        assert env["KITH_KAFKA_SASL_USERNAME"]["value"] == user
        assert env["KITH_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": user, "key": "password"}
        assert user in users
    stream_acls = users["kith-gateway-stream"]["spec"]["authorization"]["acls"]
    assert {a["resource"]["name"]: a["operations"] for a in stream_acls} == {
        f"{s}.events.v1": ["Read", "Describe"] for s in ("post", "messaging", "media", "graph")}
    # The nightly export reads every topic and writes none.
    (export,) = of_kind(docs, "CronJob")["kith-export"]["spec"]["jobTemplate"]["spec"][
        "template"]["spec"]["initContainers"]
    assert {"name": "KITH_KAFKA_SASL_USERNAME", "value": "kith-export"} in export["env"]
    acls = users["kith-export"]["spec"]["authorization"]["acls"]
    topics = {a["resource"]["name"]: a["operations"] for a in acls
              if a["resource"]["type"] == "topic"}
    assert topics == {f"{s}.events.v1": ["Read", "Describe"] for s in SERVICES}
    # KEDA reads the fan-out lag as the worker's own principal.
    auth = of_kind(docs, "TriggerAuthentication")["kith-feed-kafka"]["spec"]
    assert auth["secretTargetRef"] == [{"parameter": "password", "name": "kith-feed",
                                        "key": "password"}]
    for trigger in of_kind(docs, "ScaledObject")["feed-fanout"]["spec"]["triggers"]:
        assert trigger["metadata"]["sasl"] == "scram_sha512"
        assert trigger["authenticationRef"] == {"name": "kith-feed-kafka"}


def test_every_service_gets_a_postgres_role_and_a_database_of_its_own(
        docs: list[dict[str, Any]]) -> None:
    (cluster,) = of_kind(docs, "Cluster").values()
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    assert set(roles) == {f"kith_{db}" for db in DATABASES}
    assert all(r["login"] and "superuser" not in r for r in roles.values())
    for db in DATABASES:
        assert roles[f"kith_{db}"]["passwordSecret"] == {"name": f"kith-pg-{db}"}
    databases = {d["spec"]["name"]: d["spec"] for d in of_kind(docs, "Database").values()}
    assert set(databases) == {f"kith_{db}" for db in DATABASES}
    for name, spec in databases.items():
        assert spec["owner"] == name and spec["cluster"] == {"name": "kith-pg"}
    # The migrations Job migrates each service's database as its role (who then owns the
    # tables), straight to the primary; only the database creation needs the superuser.
    (job,) = of_kind(docs, "Job").values()
    (c,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in c["env"]}
    for svc in SERVICES:
        password = f"PG_PASSWORD_{svc.upper()}"
        assert env[password]["valueFrom"]["secretKeyRef"] == {"name": f"kith-pg-{svc}",
                                                              "key": "password"}
        assert env[f"KITH_{svc.upper()}_DATABASE_URL"]["value"] == (
            f"postgresql://kith_{svc}:$({password})@kith-pg-rw:5432/kith_{svc}")
        names = [e["name"] for e in c["env"]]
        assert names.index(password) < names.index(f"KITH_{svc.upper()}_DATABASE_URL")


def test_production_runs_as_production_with_its_secrets_where_they_belong(
        docs: list[dict[str, Any]]) -> None:
    assert of_kind(docs, "ConfigMap")["kith-config"]["data"]["KITH_ENV"] == "production"
    gateway_only = {"KITH_ACTOR_SIGNING_KEY", "KITH_GATEWAY_CURSOR_SECRET",
                    "KITH_GATEWAY_IDEMPOTENCY_SECRET"}
    for name, deployment in of_kind(docs, "Deployment").items():
        (c,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in c["env"]}
        assert env["KITH_ACTOR_VERIFY_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "kith-secrets", "key": "KITH_ACTOR_VERIFY_KEY"}
        held = gateway_only & set(env)
        expected = {"gateway": gateway_only, "gateway-stream": {"KITH_ACTOR_SIGNING_KEY"}}
        assert held == expected.get(name, set()), name
        for var in held:
            assert env[var]["valueFrom"]["secretKeyRef"] == {"name": "kith-gateway-secrets",
                                                             "key": var}
        # The signing key never reaches a pod through a Secret every pod reads.
        assert {"secretRef": {"name": "kith-gateway-secrets"}} not in c["envFrom"]
        # A service with data keys opens them with a KEK of its own; nobody else has one.
        if name in KEY_HOLDERS:
            assert env["KITH_KEY_ENCRYPTION_KEYS"]["valueFrom"]["secretKeyRef"] == {
                "name": f"kith-kek-{name}", "key": "KITH_KEY_ENCRYPTION_KEYS"}
        else:
            assert "KITH_KEY_ENCRYPTION_KEYS" not in env, name


def test_the_security_component_is_wired_into_production_only() -> None:
    component = yaml.safe_load((SECURITY / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    production = yaml.safe_load((DEPLOY / "overlays/production/kustomization.yaml").read_text())
    assert production["components"] == ["../../security"]
    assert not of_kind(rendered("overlays/dev"), "NetworkPolicy")
