"""Offline semantic checks of rendered manifests: the rules an API server, a controller or a
scheduler enforces (or silently gets wrong) that schema validation does not see.

:func:`problems` returns one line per broken rule, empty when the manifests hold together:

* topology spread constraints the API server rejects (a key both in ``labelSelector`` and in
  ``matchLabelKeys``, ``matchLabelKeys`` without a selector, a duplicate topology key) or that
  select no pod of their own workload;
* selectors: a workload's selector outside its pod template's labels; a Service, PDB or
  monitor selecting no pod; a Service's ``targetPort`` that no selected container exposes;
* probe ports (``httpGet``, ``tcpSocket``, ``grpc``) that the container does not expose;
* references to Secrets, ConfigMaps and ServiceAccounts that exist neither in the manifests,
  nor among those an operator derives from a custom resource (CloudNativePG, Strimzi), nor in
  the ``external`` names the caller says an operator creates by hand;
* PodDisruptionBudgets that can never allow a voluntary eviction (so a node drain blocks);
* HPA / KEDA targets that do not exist, and a Deployment with ``replicas`` under an autoscaler
  (every ``kubectl apply`` would reset what the autoscaler chose).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

Doc = dict[str, Any]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def problems(docs: list[Doc], external: Iterable[str] = ()) -> list[str]:
    """Every broken rule in ``docs`` (one rendered kustomization), as readable lines."""
    found: list[str] = []
    for check in (_topology_spread, _selectors, _service_ports, _probe_ports, _references,
                  _budgets, _autoscalers, _monitors):
        found += check(docs, set(external))
    return found


# -- helpers --------------------------------------------------------------------------------


def _name(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def pod_templates(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    """``(workload, pod template)`` of every workload, CronJobs' job template included."""
    for doc in docs:
        if doc["kind"] == "CronJob":
            yield doc, doc["spec"]["jobTemplate"]["spec"]["template"]
        elif doc["kind"] in WORKLOADS:
            yield doc, doc["spec"]["template"]


def containers(pod: Doc) -> list[Doc]:
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def matches(selector: Doc | None, labels: dict[str, str]) -> bool:
    """Whether a label selector (``matchLabels`` / ``matchExpressions``) selects ``labels``.
    A plain mapping (a Service's selector) is read as ``matchLabels``."""
    if not selector:
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {"In": key in labels and labels[key] in values,
              "NotIn": key not in labels or labels[key] not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def _selected_pods(docs: list[Doc], namespace: str | None, selector: Doc | None
                   ) -> list[tuple[Doc, Doc]]:
    return [(w, t) for w, t in pod_templates(docs)
            if w["metadata"].get("namespace") == namespace
            and matches(selector, t["metadata"].get("labels", {}))]


# -- the checks ----------------------------------------------------------------------------


def _topology_spread(docs: list[Doc], _: set[str]) -> list[str]:
    found = []
    for workload, template in pod_templates(docs):
        labels = template["metadata"].get("labels", {})
        seen: set[tuple[str, str]] = set()
        for c in template["spec"].get("topologySpreadConstraints", []):
            where = f"{_name(workload)}: topology spread on {c.get('topologyKey')}"
            selector = c.get("labelSelector")
            keys = c.get("matchLabelKeys", [])
            if keys and not selector:
                found.append(f"{where}: matchLabelKeys needs a labelSelector")
            in_selector = set((selector or {}).get("matchLabels", {})) | {
                e["key"] for e in (selector or {}).get("matchExpressions", [])}
            if both := in_selector & set(keys):
                found.append(f"{where}: {sorted(both)} in both labelSelector and matchLabelKeys "
                             "(the API server rejects this)")
            if len(keys) != len(set(keys)):
                found.append(f"{where}: duplicate matchLabelKeys")
            pair = (c.get("topologyKey", ""), c.get("whenUnsatisfiable", ""))
            if pair in seen:
                found.append(f"{where}: duplicate topologyKey/whenUnsatisfiable pair")
            seen.add(pair)
            if c.get("minDomains") is not None and pair[1] != "DoNotSchedule":
                found.append(f"{where}: minDomains needs whenUnsatisfiable DoNotSchedule")
            if selector and not matches(selector, labels):
                found.append(f"{where}: its labelSelector does not select the workload's own pods")
    return found


def _selectors(docs: list[Doc], _: set[str]) -> list[str]:
    found = []
    for workload, template in pod_templates(docs):
        selector = workload["spec"].get("selector")
        if workload["kind"] in ("Deployment", "StatefulSet", "DaemonSet") and not matches(
                selector, template["metadata"].get("labels", {})):
            found.append(f"{_name(workload)}: its selector does not match its pod template")
    for doc in docs:
        ns = doc["metadata"].get("namespace")
        if doc["kind"] == "Service" and doc["spec"].get("selector") and not _selected_pods(
                docs, ns, doc["spec"]["selector"]):
            found.append(f"{_name(doc)}: selects no pod")
        if doc["kind"] == "PodDisruptionBudget" and not _selected_pods(
                docs, ns, doc["spec"].get("selector")):
            found.append(f"{_name(doc)}: selects no pod")
    return found


def _service_ports(docs: list[Doc], _: set[str]) -> list[str]:
    found = []
    for svc in (d for d in docs if d["kind"] == "Service" and d["spec"].get("selector")):
        pods = _selected_pods(docs, svc["metadata"].get("namespace"), svc["spec"]["selector"])
        exposed = {p.get(k) for _, t in pods for c in containers(t) for p in c.get("ports", [])
                   for k in ("name", "containerPort")}
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            if pods and target not in exposed:
                found.append(f"{_name(svc)}: targetPort {target!r} is exposed by no selected pod")
    return found


def _probe_ports(docs: list[Doc], _: set[str]) -> list[str]:
    found = []
    for workload, template in pod_templates(docs):
        for c in containers(template):
            exposed = {p.get(k) for p in c.get("ports", []) for k in ("name", "containerPort")}
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = c.get(kind) or {}
                for action in ("httpGet", "tcpSocket", "grpc"):
                    if action in probe and probe[action]["port"] not in exposed:
                        found.append(f"{_name(workload)}/{c['name']}: {kind} port "
                                     f"{probe[action]['port']!r} is not a container port")
    return found


def derived_names(docs: list[Doc]) -> set[tuple[str, str]]:
    """``(kind, name)`` of the Secrets, ConfigMaps and Services operators derive from the
    custom resources in ``docs`` (CloudNativePG, Strimzi) or Kubernetes creates itself."""
    names: set[tuple[str, str]] = {("ServiceAccount", "default")}
    for doc in docs:
        n = doc["metadata"]["name"]
        if doc["kind"] == "Cluster" and doc["apiVersion"].startswith("postgresql.cnpg.io"):
            names |= {("Secret", f"{n}-app"), ("Secret", f"{n}-ca"), ("Service", f"{n}-rw"),
                      ("Service", f"{n}-ro"), ("Service", f"{n}-r")}
            if doc["spec"].get("enableSuperuserAccess"):
                names.add(("Secret", f"{n}-superuser"))
        if doc["kind"] == "Pooler":
            names.add(("Service", n))
        if doc["kind"] == "Kafka":
            names |= {("Service", f"{n}-kafka-bootstrap"), ("Secret", f"{n}-cluster-ca-cert")}
    return names


def _references(docs: list[Doc], external: set[str]) -> list[str]:
    present = {(d["kind"], d["metadata"]["name"]) for d in docs} | derived_names(docs)
    found = []

    def need(kind: str, name: str, where: str, ref: Doc | None = None) -> None:
        if (ref or {}).get("optional") or (kind, name) in present or name in external:
            return
        found.append(f"{where}: {kind} {name!r} exists nowhere")

    for workload, template in pod_templates(docs):
        spec = template["spec"]
        where = _name(workload)
        need("ServiceAccount", spec.get("serviceAccountName", "default"), where)
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                need("Secret", volume["secret"]["secretName"], where, volume["secret"])
            if "configMap" in volume:
                need("ConfigMap", volume["configMap"]["name"], where, volume["configMap"])
        for c in containers(template):
            for source in c.get("envFrom", []):
                if "secretRef" in source:
                    need("Secret", source["secretRef"]["name"], where, source["secretRef"])
                if "configMapRef" in source:
                    need("ConfigMap", source["configMapRef"]["name"], where,
                         source["configMapRef"])
            for env in c.get("env", []):
                ref = env.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    need("Secret", ref["secretKeyRef"]["name"], where, ref["secretKeyRef"])
                if "configMapKeyRef" in ref:
                    need("ConfigMap", ref["configMapKeyRef"]["name"], where,
                         ref["configMapKeyRef"])
    for doc in docs:
        for ref in _key_refs(doc.get("spec", {})):
            need(*ref, _name(doc))
    return found


def _key_refs(node: Any) -> Iterator[tuple[str, str]]:
    """Secret/ConfigMap key references inside custom resources (metricsConfig, s3Credentials)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "configMapKeyRef":
                yield "ConfigMap", v["name"]
            elif k in ("accessKeyId", "secretAccessKey") and isinstance(v, dict) and "name" in v:
                yield "Secret", v["name"]
            else:
                yield from _key_refs(v)
    elif isinstance(node, list):
        for item in node:
            yield from _key_refs(item)


def autoscaled(docs: list[Doc]) -> dict[tuple[str, str], tuple[Doc, int]]:
    """``(kind, name)`` of each autoscaled workload → (autoscaler, its minimum replicas)."""
    scaled = {}
    for doc in docs:
        if doc["kind"] == "HorizontalPodAutoscaler":
            ref = doc["spec"]["scaleTargetRef"]
            scaled[(ref["kind"], ref["name"])] = (doc, doc["spec"].get("minReplicas", 1))
        elif doc["kind"] == "ScaledObject":
            ref = doc["spec"]["scaleTargetRef"]
            scaled[(ref.get("kind", "Deployment"), ref["name"])] = (
                doc, doc["spec"].get("minReplicaCount", 0))
    return scaled


def _budgets(docs: list[Doc], _: set[str]) -> list[str]:
    found = []
    scaled = autoscaled(docs)
    for pdb in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        spec = pdb["spec"]
        pods = _selected_pods(docs, pdb["metadata"].get("namespace"), spec.get("selector"))
        replicas = 0
        for workload, _t in pods:
            key = (workload["kind"], workload["metadata"]["name"])
            replicas += scaled[key][1] if key in scaled else workload["spec"].get("replicas", 1)
        if "maxUnavailable" in spec:
            allowed = _count(spec["maxUnavailable"], replicas, up=False)
        else:
            allowed = replicas - _count(spec.get("minAvailable", 0), replicas, up=True)
        if pods and allowed < 1:
            found.append(f"{_name(pdb)}: with {replicas} pod(s) it never allows an eviction "
                         "(a node drain would block)")
    return found


def _count(value: int | str, replicas: int, up: bool) -> int:
    if isinstance(value, int):
        return value
    share = replicas * int(value.rstrip("%"))
    return -(-share // 100) if up else share // 100


def _autoscalers(docs: list[Doc], _: set[str]) -> list[str]:
    present = {(d["kind"], d["metadata"]["name"]) for d in docs}
    found = []
    for (kind, name), (scaler, minimum) in autoscaled(docs).items():
        if (kind, name) not in present:
            found.append(f"{_name(scaler)}: scales {kind}/{name}, which does not exist")
            continue
        target = next(d for d in docs if (d["kind"], d["metadata"]["name"]) == (kind, name))
        if "replicas" in target["spec"]:
            found.append(f"{kind}/{name}: sets replicas although {_name(scaler)} owns the count "
                         "(each apply would reset it)")
        maximum = scaler["spec"].get("maxReplicas", scaler["spec"].get("maxReplicaCount", 100))
        if minimum > maximum:
            found.append(f"{_name(scaler)}: minimum {minimum} above maximum {maximum}")
    return found


def _monitors(docs: list[Doc], _: set[str]) -> list[str]:
    found = []
    for mon in (d for d in docs if d["kind"] in ("ServiceMonitor", "PodMonitor")):
        ns = mon["metadata"].get("namespace")
        selector = mon["spec"]["selector"]
        if mon["kind"] == "ServiceMonitor":
            targets = [d for d in docs if d["kind"] == "Service"
                       and d["metadata"].get("namespace") == ns
                       and matches(selector, d["metadata"].get("labels", {}))]
            ports = {p.get("name") for s in targets for p in s["spec"]["ports"]}
            endpoints = mon["spec"]["endpoints"]
        else:
            pods = _selected_pods(docs, ns, selector)
            targets = pods  # type: ignore[assignment]
            ports = {p.get("name") for _, t in pods for c in containers(t)
                     for p in c.get("ports", [])}
            endpoints = mon["spec"]["podMetricsEndpoints"]
        if not targets:
            found.append(f"{_name(mon)}: selects nothing")
        for endpoint in endpoints:
            if targets and endpoint["port"] not in ports:
                found.append(f"{_name(mon)}: port {endpoint['port']!r} exists on no target")
    return found
