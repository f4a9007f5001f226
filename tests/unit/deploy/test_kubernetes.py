"""Every kustomization in deploy/ renders, validates offline and holds together.

Rendering uses the renderer in ``kustomize.py``; where ``kubectl`` is installed the
same folders are also rendered with ``kubectl kustomize`` and must come out identical.
Core kinds are validated against the Kubernetes schemas (kubernetes-validate, strict);
custom resources (Strimzi, CloudNativePG, KEDA) by the structural checks below.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from kith.common.config import DEFAULT_GRPC_PORTS, SERVICES
from tests.unit.deploy.kustomize import Doc, key, render

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
FOLDERS = ["base", "infra", "overlays/dev", "overlays/production"]
K8S_VERSION = "1.32"
CUSTOM = {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster", "Database",
          "ScaledObject", "TriggerAuthentication", "Pooler", "ObjectStore", "ScheduledBackup",
          "ServiceMonitor", "PodMonitor", "PrometheusRule"}
FANOUT_GROUP = "projection.feed.fanout"  # ProjectionRunner group of the feed.fanout projection


def rendered(folder: str) -> list[Doc]:
    return copy.deepcopy(_rendered(folder))


@functools.cache
def _rendered(folder: str) -> list[Doc]:
    docs = render(DEPLOY / folder)
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run([kubectl, "kustomize", str(DEPLOY / folder)], check=True,
                             capture_output=True, text=True).stdout
        theirs = {key(d): d for d in yaml.safe_load_all(out) if d}
        assert {key(d): d for d in docs} == theirs, "renderer disagrees with kubectl kustomize"
    assert len({key(d) for d in docs}) == len(docs), "duplicate resources"
    return docs


@pytest.fixture(scope="module", params=FOLDERS)
def docs(request: pytest.FixtureRequest) -> list[Doc]:
    return rendered(request.param)


def of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_core_kinds_validate_against_the_kubernetes_schemas(docs: list[Doc]) -> None:
    assert docs
    for doc in docs:
        if doc["kind"] in CUSTOM:
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_only_known_custom_resources_appear(docs: list[Doc]) -> None:
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            assert doc["kind"] in CUSTOM, doc["kind"]


# -- the application ------------------------------------------------------------------------

APP_FOLDERS = ["base", "overlays/dev", "overlays/production"]


@pytest.fixture(scope="module", params=APP_FOLDERS)
def app(request: pytest.FixtureRequest) -> list[Doc]:
    return rendered(request.param)


def test_every_process_has_a_deployment_and_the_grpc_services_a_health_probed_port(
    app: list[Doc],
) -> None:
    deployments = of_kind(app, "Deployment")
    assert set(deployments) == {*SERVICES, "feed-fanout", "gateway", "gateway-stream"}
    for svc in SERVICES:
        port = DEFAULT_GRPC_PORTS[svc]
        (container,) = deployments[svc]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [svc, "serve"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}
        # It listens on all interfaces; everybody else reaches it through its Service.
        assert {"name": f"KITH_{svc.upper()}_ADDR", "value": f"0.0.0.0:{port}"} in container["env"]
    (worker,) = deployments["feed-fanout"]["spec"]["template"]["spec"]["containers"]
    assert worker["args"] == ["feed", "fanout"]
    (gateway,) = deployments["gateway"]["spec"]["template"]["spec"]["containers"]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (stream,) = deployments["gateway-stream"]["spec"]["template"]["spec"]["containers"]
    assert stream["args"] == ["gateway", "stream"]
    assert stream["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_pods_run_restricted_with_requests_and_limits(app: list[Doc]) -> None:
    pods = [d["spec"]["template"]["spec"] for d in app if d["kind"] in ("Deployment", "Job")]
    assert pods
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) == {"cpu", "memory"}
            assert re.fullmatch(r"ghcr\.io/kith/kith:[\w.-]+", c["image"]), c["image"]
            assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])


def test_services_and_disruption_budgets_select_their_deployments(app: list[Doc]) -> None:
    deployments = of_kind(app, "Deployment")
    services = of_kind(app, "Service")
    budgets = of_kind(app, "PodDisruptionBudget")
    assert set(services) == set(deployments) == set(budgets)
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert services[name]["spec"]["selector"].items() <= labels.items()
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        container_ports = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"]
                           for p in c["ports"]}
        assert {p["targetPort"] for p in services[name]["spec"]["ports"]} <= container_ports


def test_the_config_points_every_process_at_the_service_addresses(app: list[Doc]) -> None:
    config = of_kind(app, "ConfigMap")["kith-config"]["data"]
    services = of_kind(app, "Service")
    for svc in SERVICES:
        host, port = config[f"KITH_{svc.upper()}_ADDR"].split(":")
        assert host == svc
        assert int(port) in {p["port"] for p in services[svc]["spec"]["ports"]}
    assert config["KITH_METRICS_PORT"] == "9100"
    for deployment in of_kind(app, "Deployment").values():
        (c,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {"configMapRef": {"name": "kith-config"}} in c["envFrom"]
        assert {"secretRef": {"name": "kith-secrets"}} in c["envFrom"]


def test_the_fanout_worker_scales_on_consumer_lag_up_to_the_partition_count(
    app: list[Doc],
) -> None:
    scaled = of_kind(app, "ScaledObject")["feed-fanout"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"] == {"name": "feed-fanout"}
    partitions = int(of_kind(app, "ConfigMap")["kith-config"]["data"]["KITH_TOPIC_PARTITIONS"])
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    assert scaled["spec"]["maxReplicaCount"] <= partitions  # more would sit idle
    bootstrap = of_kind(app, "ConfigMap")["kith-config"]["data"]["KITH_KAFKA_BOOTSTRAP"]
    triggers = scaled["spec"]["triggers"]
    assert {t["metadata"]["topic"] for t in triggers} == {"post.events.v1", "graph.events.v1"}
    for trigger in triggers:
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == FANOUT_GROUP
        assert trigger["metadata"]["bootstrapServers"] == bootstrap
        assert int(trigger["metadata"]["lagThreshold"]) > 0


def test_the_fanout_group_is_the_feed_projections_consumer_group() -> None:
    from kith.feed.fanout import FanoutProjection

    assert f"projection.{FanoutProjection.name}" == FANOUT_GROUP


def test_overlays_namespace_everything_and_commit_no_production_secret() -> None:
    for folder, namespace in (("overlays/dev", "kith-dev"), ("overlays/production", "kith")):
        docs = rendered(folder)
        assert {d["metadata"].get("namespace") for d in docs} == {namespace}
    assert set(of_kind(rendered("overlays/dev"), "Secret")) == {"kith-secrets"}
    assert not of_kind(rendered("overlays/production"), "Secret")
    assert not of_kind(rendered("base"), "Secret")
    # Autoscalers own the replica counts: at least 3 per service in production, 1 in dev.
    production = of_kind(rendered("overlays/production"), "HorizontalPodAutoscaler")
    assert all(production[s]["spec"]["minReplicas"] == 3
               for s in [*SERVICES, "gateway", "gateway-stream"])
    assert all(h["spec"]["maxReplicas"] == 1 for h in of_kind(rendered("overlays/dev"),
                                                             "HorizontalPodAutoscaler").values())
    assert not any("replicas" in d["spec"] for d in of_kind(rendered("overlays/production"),
                                                            "Deployment").values())


# -- Kafka and PostgreSQL -------------------------------------------------------------------

INFRA_FOLDERS = ["infra", "overlays/dev", "overlays/production"]


@pytest.fixture(scope="module", params=INFRA_FOLDERS)
def infra(request: pytest.FixtureRequest) -> list[Doc]:
    return rendered(request.param)


def test_kafka_runs_kraft_on_strimzi_v1_with_a_node_pool(infra: list[Doc]) -> None:
    (kafka,) = of_kind(infra, "Kafka").values()
    pools = of_kind(infra, "KafkaNodePool").values()
    for doc in [kafka, *pools, *of_kind(infra, "KafkaTopic").values()]:
        assert doc["apiVersion"] == "kafka.strimzi.io/v1"
    assert "zookeeper" not in kafka["spec"]
    cluster = kafka["metadata"]["name"]
    roles = {r for p in pools for r in p["spec"]["roles"]}
    assert roles == {"controller", "broker"}
    assert all(p["metadata"]["labels"]["strimzi.io/cluster"] == cluster for p in pools)
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    config = kafka["spec"]["kafka"]["config"]
    for setting in ("offsets.topic.replication.factor", "default.replication.factor",
                    "transaction.state.log.replication.factor"):
        assert config[setting] <= brokers
    assert config["min.insync.replicas"] <= config["default.replication.factor"]
    assert {listener["port"] for listener in kafka["spec"]["kafka"]["listeners"]} >= {9092}


def test_every_service_has_its_event_topic_with_infinite_retention(infra: list[Doc]) -> None:
    (kafka,) = of_kind(infra, "Kafka").values()
    brokers = sum(p["spec"]["replicas"] for p in of_kind(infra, "KafkaNodePool").values())
    topics = of_kind(infra, "KafkaTopic")
    assert set(topics) == {f"{s}.events.v1" for s in SERVICES}
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert topic["spec"]["partitions"] == 12
        assert topic["spec"]["config"]["retention.ms"] == -1
        assert 1 <= topic["spec"]["replicas"] <= brokers
        assert topic["spec"]["config"]["min.insync.replicas"] <= min(topic["spec"]["replicas"],
                                                                     brokers)


def test_postgres_is_a_cloudnativepg_cluster_whose_secret_the_pods_read(infra: list[Doc]) -> None:
    (cluster,) = of_kind(infra, "Cluster").values()
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["instances"] >= 1
    assert cluster["spec"]["enableSuperuserAccess"] is True
    assert re.fullmatch(r"\d+[GM]i", cluster["spec"]["storage"]["size"])


def test_the_application_and_the_infrastructure_agree_on_addresses() -> None:
    for folder in ("overlays/dev", "overlays/production"):
        docs = rendered(folder)
        (kafka,) = of_kind(docs, "Kafka").values()
        (cluster,) = of_kind(docs, "Cluster").values()
        config = of_kind(docs, "ConfigMap")["kith-config"]["data"]
        assert config["KITH_KAFKA_BOOTSTRAP"] == f"{kafka['metadata']['name']}-kafka-bootstrap:9092"
        topics = of_kind(docs, "KafkaTopic")
        assert {t["spec"]["partitions"] for t in topics.values()} == {
            int(config["KITH_TOPIC_PARTITIONS"])}
        (pooler,) = of_kind(docs, "Pooler").values()
        assert pooler["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
        superuser = f"{cluster['metadata']['name']}-superuser"
        for d in of_kind(docs, "Job").values():  # migrations: straight to the primary
            (c,) = d["spec"]["template"]["spec"]["containers"]
            dsn = next(e for e in c["env"] if e["name"] == "KITH_PG_DSN")
            assert dsn["valueFrom"]["secretKeyRef"] == {"name": superuser, "key": "uri"}
        for name, d in of_kind(docs, "Deployment").items():  # the rest: through the pooler
            (c,) = d["spec"]["template"]["spec"]["containers"]
            env = {e["name"]: e for e in c["env"]}
            assert env["KITH_PG_DSN"]["value"] == (
                f"postgresql://{pooler['metadata']['name']}:5432/postgres")
            # Production (deploy/security): a service (and the fan-out worker, feed's) logs in
            # as its own role, into its own database; the gateway still as the superuser.
            svc = "feed" if name == "feed-fanout" else name
            own_role = folder == "overlays/production" and svc in SERVICES
            credentials = f"kith-pg-{svc}" if own_role else superuser
            for var, field in (("PGUSER", "username"), ("PGPASSWORD", "password")):
                assert env[var]["valueFrom"]["secretKeyRef"] == {"name": credentials,
                                                                 "key": field}
            if own_role:
                assert env[f"KITH_{svc.upper()}_DATABASE_URL"]["value"] == (
                    f"postgresql://{pooler['metadata']['name']}:5432/kith_{svc}")


# -- the dashboard --------------------------------------------------------------------------


def test_the_grafana_dashboard_charts_metrics_the_processes_export() -> None:
    from prometheus_client import REGISTRY

    import kith.common.metrics  # registers the instruments
    import kith.gateway.metrics  # noqa: F401

    exported = {metric.name + suffix for metric in REGISTRY.collect()
                for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    dashboard = json.loads((DEPLOY / "grafana" / "kith-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 12
    used = {m for e in exprs for m in re.findall(r"\bkith_[a-z_]+\b", e)}
    assert used and used <= exported, used - exported
    for wanted in ("kith_consumer_lag_messages", "kith_relay_backlog_events",
                   "kith_fanout_deliveries_total", "kith_grpc_server_handling_seconds_bucket",
                   "kith_fanout_batch_deliveries_bucket"):
        assert wanted in used
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


# -- metrics --------------------------------------------------------------------------------


def test_every_monitor_scrapes_the_operations_port_never_the_public_one() -> None:
    """/metrics lives on KITH_METRICS_PORT (9100) in every process; the gateway's public port
    (8080) no longer serves it, so a monitor pointed there would scrape 404s."""
    docs = rendered("overlays/production")
    metrics_port = int(of_kind(docs, "ConfigMap")["kith-config"]["data"]["KITH_METRICS_PORT"])
    deployments = of_kind(docs, "Deployment")
    services = of_kind(docs, "Service")
    scraped: set[str] = set()
    monitors = [*of_kind(docs, "PodMonitor").values(), *of_kind(docs, "ServiceMonitor").values()]
    for monitor in monitors:
        selector = monitor["spec"]["selector"]["matchLabels"]
        if monitor["kind"] == "PodMonitor":
            targets = [d for d in deployments.values()
                       if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        else:
            targets = [deployments[s["metadata"]["name"]] for s in services.values()
                       if selector.items() <= s["metadata"]["labels"].items()]
        endpoints = monitor["spec"].get("podMetricsEndpoints") or monitor["spec"]["endpoints"]
        assert targets and endpoints, monitor["metadata"]["name"]
        for deployment in targets:
            (c,) = deployment["spec"]["template"]["spec"]["containers"]
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            for endpoint in endpoints:
                assert ports[endpoint["port"]] == metrics_port, monitor["metadata"]["name"]
                assert endpoint["path"] == "/metrics"
            scraped.add(deployment["metadata"]["name"])
    assert scraped == set(deployments)  # the gateway included
    gateway = deployments["gateway"]["spec"]["template"]["spec"]["containers"][0]
    public = next(p["containerPort"] for p in gateway["ports"] if p["name"] == "http")
    assert public != metrics_port
    assert int(of_kind(docs, "ConfigMap")["kith-config"]["data"]["KITH_GATEWAY_PORT"]) == public
    # ... and the monitoring namespace may reach it (deploy/security).
    allowed = of_kind(docs, "NetworkPolicy")["kith-metrics-from-monitoring"]["spec"]["ingress"]
    assert [p["port"] for rule in allowed for p in rule["ports"]] == [metrics_port]


def test_the_process_down_alert_watches_every_process() -> None:
    (rule,) = of_kind(rendered("overlays/production"), "PrometheusRule").values()
    (alert,) = [r for g in rule["spec"]["groups"] for r in g["rules"]
                if r["alert"] == "KithProcessDown"]
    (pattern,) = re.findall(r'container=~"([^"]+)"', alert["expr"])
    assert set(pattern.split("|")) == {*SERVICES, "feed-fanout", "gateway", "gateway-stream"}
