"""The semantic checks (``semantics.py``) pass for every kustomization and catch each class of
mistake, starting with the one a Kubernetes 1.32 API server rejected in production."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from kith.cli.keys import HOLDERS as KEY_HOLDERS
from kith.common.config import DATABASES, SERVICES
from tests.unit.deploy.kustomize import Doc, render
from tests.unit.deploy.semantics import problems
from tests.unit.deploy.test_kubernetes import DEPLOY, FOLDERS, of_kind, rendered

# What an operator creates by hand (docs/operations.md); everything else must be in the
# manifests or derived by an operator from them.
EXTERNAL = {
    "base": {"kith-secrets", "kith-pg-superuser"},  # base alone has no Cluster
    "infra": set(),
    "overlays/dev": set(),
    "overlays/production": {"kith-secrets", "kith-gateway-secrets", "kith-backup-s3",
                            "kith-export-s3", *(f"kith-pg-{db}" for db in DATABASES),
                            *(f"kith-kek-{s}" for s in KEY_HOLDERS)},
}

# The production topology-spread patch as it was: app.kubernetes.io/name both selected and a
# matchLabelKey, which the API server forbids ("must not be specified in labelSelector").
OLD_SPREAD_PATCH = f"""\
- target:
    kind: Deployment
    name: "{'|'.join([*SERVICES, 'gateway'])}"
  patch: |-
    - op: add
      path: /spec/template/spec/topologySpreadConstraints
      value:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: ScheduleAnyway
        labelSelector:
          matchExpressions:
          - key: app.kubernetes.io/name
            operator: Exists
        matchLabelKeys: [app.kubernetes.io/name, pod-template-hash]
"""


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_kustomization_holds_together(folder: str) -> None:
    assert problems(rendered(folder), EXTERNAL[folder]) == []


def test_the_old_production_spread_patch_is_caught(tmp_path: Path) -> None:
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    production = tmp_path / "deploy" / "overlays" / "production"
    kustomization = yaml.safe_load((production / "kustomization.yaml").read_text())
    kustomization["patches"] = [p for p in kustomization["patches"]
                                if "topologySpreadConstraints" not in p.get("patch", "")]
    kustomization["patches"] += yaml.safe_load(OLD_SPREAD_PATCH)
    (production / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))

    found = problems(render(production), EXTERNAL["overlays/production"])

    assert len(found) == len(SERVICES) + 1  # every service and the gateway
    assert all("['app.kubernetes.io/name'] in both labelSelector and matchLabelKeys" in p
               for p in found), found


def test_production_spreads_every_deployment_over_zones_then_nodes() -> None:
    for deployment in of_kind(rendered("overlays/production"), "Deployment").values():
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert [c["topologyKey"] for c in spread] == ["topology.kubernetes.io/zone",
                                                      "kubernetes.io/hostname"]
        for c in spread:
            assert c["matchLabelKeys"] == ["app.kubernetes.io/name", "pod-template-hash"]


def _deployment(docs: list[Doc], name: str) -> Doc:
    return of_kind(docs, "Deployment")[name]


def _container(docs: list[Doc], name: str) -> Doc:
    return _deployment(docs, name)["spec"]["template"]["spec"]["containers"][0]


MISTAKES: dict[str, tuple[Callable[[list[Doc]], object], str]] = {
    "a probe on a port the container does not expose": (
        lambda d: _container(d, "gateway")["livenessProbe"]["httpGet"].update(port="admin"),
        "Deployment/gateway/gateway: livenessProbe port 'admin' is not a container port"),
    "a Secret nobody creates": (
        lambda d: _container(d, "post")["envFrom"].append({"secretRef": {"name": "post-keys"}}),
        "Deployment/post: Secret 'post-keys' exists nowhere"),
    "a ServiceAccount nobody creates": (
        lambda d: _deployment(d, "feed")["spec"]["template"]["spec"].update(
            serviceAccountName="feed-reader"),
        "Deployment/feed: ServiceAccount 'feed-reader' exists nowhere"),
    "a ConfigMap the broker metrics need": (
        lambda d: d.remove(of_kind(d, "ConfigMap")["kith-kafka-metrics"]),
        "Kafka/kith: ConfigMap 'kith-kafka-metrics' exists nowhere"),
    "a PDB that never allows an eviction": (
        lambda d: of_kind(d, "PodDisruptionBudget")["graph"]["spec"].update(minAvailable=3),
        "PodDisruptionBudget/graph: with 3 pod(s) it never allows an eviction"),
    "an HPA whose target is gone": (
        lambda d: of_kind(d, "HorizontalPodAutoscaler")["feed"]["spec"]["scaleTargetRef"].update(
            name="feeds"),
        "HorizontalPodAutoscaler/feed: scales Deployment/feeds, which does not exist"),
    "replicas fighting the fan-out worker's ScaledObject": (
        lambda d: _deployment(d, "feed-fanout")["spec"].update(replicas=2),
        "Deployment/feed-fanout: sets replicas although ScaledObject/feed-fanout owns the count"),
    "a Service port no pod exposes": (
        lambda d: of_kind(d, "Service")["identity"]["spec"]["ports"][0].update(targetPort="rpc"),
        "Service/identity: targetPort 'rpc' is exposed by no selected pod"),
    "a selector outside the pod template": (
        lambda d: _deployment(d, "messaging")["spec"]["selector"]["matchLabels"].update(
            tier="x"),
        "Deployment/messaging: its selector does not match its pod template"),
    "a Kafka principal whose Secret nobody writes (no User Operator)": (
        lambda d: of_kind(d, "Kafka")["kith"]["spec"]["entityOperator"].pop("userOperator"),
        "Deployment/media: Secret 'kith-media' exists nowhere"),
    "a database role whose password Secret nobody creates": (
        lambda d: of_kind(d, "Cluster")["kith-pg"]["spec"]["managed"]["roles"][0].update(
            passwordSecret={"name": "kith-pg-nobody"}),
        "Cluster/kith-pg: Secret 'kith-pg-nobody' exists nowhere"),
    "the gateway monitor scraping the public port (which no longer serves /metrics)": (
        lambda d: of_kind(d, "PodMonitor")["kith-gateway-http"]["spec"]["podMetricsEndpoints"][0]
        .update(port="http"),
        "PodMonitor/kith-gateway-http: port 'http' of Deployment/gateway is 8080, "
        "not its metrics port 9100"),
    "a monitor scraping a port that does not exist": (
        lambda d: of_kind(d, "PodMonitor")["kith-workers"]["spec"]["podMetricsEndpoints"][0]
        .update(port="prom"),
        "PodMonitor/kith-workers: port 'prom' exists on no target"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_class_of_mistake_is_reported(mistake: str) -> None:
    docs = rendered("overlays/production")
    mutate, expected = MISTAKES[mistake]
    mutate(docs)
    found = problems(docs, EXTERNAL["overlays/production"])
    assert any(p.startswith(expected) for p in found), found


# -- releases, PostgreSQL, Kafka --------------------------------------------------------------


@pytest.mark.parametrize("folder", ["overlays/dev", "overlays/production"])
def test_the_migrations_job_is_named_after_the_release_it_migrates(folder: str) -> None:
    docs = rendered(folder)
    (job,) = of_kind(docs, "Job").values()
    (image,) = {c["image"] for c in job["spec"]["template"]["spec"]["containers"]}
    tag = image.rpartition(":")[2]
    assert job["metadata"]["name"] == "kith-migrate-" + tag.replace(".", "-")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "infra", "prepare", "--wait-for-topics"]


def test_production_postgres_archives_backs_up_replicates_synchronously_and_pools() -> None:
    docs = rendered("overlays/production")
    cluster = of_kind(docs, "Cluster")["kith-pg"]["spec"]
    assert cluster["postgresql"]["synchronous"]["method"] == "any"
    assert cluster["postgresql"]["synchronous"]["number"] >= 1
    assert cluster["instances"] > cluster["postgresql"]["synchronous"]["number"]
    (plugin,) = cluster["plugins"]
    assert plugin["isWALArchiver"] is True
    store = of_kind(docs, "ObjectStore")[plugin["parameters"]["barmanObjectName"]]
    assert store["spec"]["configuration"]["destinationPath"].startswith("s3://")
    (backup,) = of_kind(docs, "ScheduledBackup").values()
    assert backup["spec"]["cluster"]["name"] == "kith-pg"
    assert backup["spec"]["method"] == "plugin"
    assert backup["spec"]["pluginConfiguration"]["name"] == plugin["name"]
    assert len(backup["spec"]["schedule"].split()) == 6  # CloudNativePG: seconds first

    # The stated connection budget: every server connection the poolers may open, plus the
    # reserved ones, fits in max_connections.
    (pooler,) = of_kind(docs, "Pooler").values()
    pgb = pooler["spec"]["pgbouncer"]["parameters"]
    databases = len(DATABASES)  # one per service + the gateway's
    from_poolers = pooler["spec"]["instances"] * databases * (
        int(pgb["default_pool_size"]) + int(pgb["reserve_pool_size"]))
    reserved = int(cluster["postgresql"]["parameters"]["superuser_reserved_connections"])
    replication_and_jobs = 10 + 2
    assert from_poolers + reserved + replication_and_jobs <= int(
        cluster["postgresql"]["parameters"]["max_connections"])
    for deployment in of_kind(docs, "Deployment").values():
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["KITH_PG_DSN"]["value"].startswith(
            f"postgresql://{pooler['metadata']['name']}:5432/")


def test_the_pitr_script_renders_a_recovery_cluster(tmp_path: Path) -> None:
    import subprocess

    out = subprocess.run(
        ["bash", str(DEPLOY / "restore" / "pitr.sh"), "--dry-run", "--target-time",
         "2026-11-30 12:00:00+00", "--name", "kith-pg-restored"],
        check=True, capture_output=True, text=True).stdout
    (cluster,) = [d for d in yaml.safe_load_all(out) if d]
    recovery = cluster["spec"]["bootstrap"]["recovery"]
    assert cluster["metadata"]["name"] == "kith-pg-restored"
    assert recovery["recoveryTarget"] == {"targetTime": "2026-11-30 12:00:00+00"}
    (source,) = cluster["spec"]["externalClusters"]
    assert source["name"] == recovery["source"]
    assert source["plugin"]["parameters"] == {"barmanObjectName": "kith-pg-backups",
                                              "serverName": "kith-pg"}


def test_production_kafka_is_rack_aware_exports_metrics_and_offers_tls() -> None:
    (kafka,) = of_kind(rendered("overlays/production"), "Kafka").values()
    spec = kafka["spec"]
    assert spec["kafka"]["rack"]["topologyKey"] == "topology.kubernetes.io/zone"
    assert {(x["port"], x["tls"]) for x in spec["kafka"]["listeners"]} == {(9092, False),
                                                                        (9093, True)}
    assert spec["kafka"]["metricsConfig"]["type"] == "jmxPrometheusExporter"
    assert "kafkaExporter" in spec


def test_the_alerts_have_runbooks_in_the_operations_guide() -> None:
    (rule,) = of_kind(rendered("overlays/production"), "PrometheusRule").values()
    guide = (DEPLOY.parent / "docs" / "operations.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", guide, re.M)}
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    assert len(alerts) >= 8
    for alert in alerts:
        anchor = alert["annotations"]["runbook_url"].rpartition("#")[2]
        assert anchor in anchors, f"{alert['alert']}: no section #{anchor} in operations.md"


def test_the_dashboard_scopes_every_query_to_a_namespace_and_pods_and_charts_error_ratios(
) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "kith-dashboard.json").read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "pod"} <= variables
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for expr in exprs:
        for selector in re.findall(r"\bkith_[a-z_]+(\{[^}]*\})?", expr):
            assert 'namespace=~"$namespace", pod=~"$pod"' in selector, expr
    titles = [p["title"].lower() for p in dashboard["panels"]]
    assert any("error ratio" in t for t in titles) and any("5xx ratio" in t for t in titles)
