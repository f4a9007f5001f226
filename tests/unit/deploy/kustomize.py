"""A small offline kustomize renderer, for the features ``deploy/`` uses.

Supported: ``resources`` (files and kustomization folders, recursively), ``components``
(folders whose ``kind: Component`` kustomization adds resources and patches the parent's),
``namespace``,
``labels`` (``pairs`` on ``metadata.labels``; selectors and templates untouched),
``images`` (``newName``/``newTag``), and ``patches`` given inline or by ``path``: strategic
merge for simple cases (maps merged, lists of named items merged by ``name``, other lists
replaced) and JSON 6902 (``add``/``replace``/``remove``) with a ``target`` (kind, name as an
anchored regular expression). Anything else raises, so the manifests cannot silently use a
feature this renderer ignores.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]
KNOWN_KEYS = {"apiVersion", "kind", "namespace", "resources", "components", "labels", "images",
              "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass"}


class UnsupportedFeature(ValueError):
    """The kustomization uses something this renderer does not implement."""


def load_all(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def render(folder: Path, docs: list[Doc] | None = None) -> list[Doc]:
    """The resources ``kubectl kustomize folder`` would print (order aside). A component
    (``kind: Component``) is rendered over ``docs``, the resources of the kustomization
    that names it (alone, it renders over nothing)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN_KEYS
    if unknown:
        raise UnsupportedFeature(f"{folder}: {sorted(unknown)}")
    component = kustomization.get("kind") == "Component"
    if docs is not None and not component:
        raise ValueError(f"{folder} is listed as a component but is not kind: Component")
    docs = list(docs or [])
    for entry in kustomization.get("resources", []):
        target = (folder / entry).resolve()
        docs += render(target) if target.is_dir() else load_all(target)
    for entry in kustomization.get("components", []):
        docs = render((folder / entry).resolve(), docs)
    for patch in kustomization.get("patches", []):
        docs = _patch(folder, docs, patch)
    for image in kustomization.get("images", []):
        _set_image(docs, image)
    for label in kustomization.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise UnsupportedFeature("labels with includeSelectors/includeTemplates")
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
    if "namespace" in kustomization:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = kustomization["namespace"]
    return docs


def key(doc: Doc) -> tuple[str, str, str]:
    return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


# -- patches --------------------------------------------------------------------------------


def _patch(folder: Path, docs: list[Doc], patch: Doc) -> list[Doc]:
    if set(patch) - {"path", "patch", "target"}:
        raise UnsupportedFeature(f"patch options {sorted(patch)}")
    text = (folder / patch["path"]).read_text() if "path" in patch else patch["patch"]
    bodies = [b for b in yaml.safe_load_all(text) if b is not None]
    if len(bodies) == 1 and isinstance(bodies[0], list):  # JSON 6902
        target = patch.get("target")
        if not target:
            raise UnsupportedFeature("a JSON 6902 patch needs a target")
        matched = [d for d in docs if _matches(d, target)]
        if not matched:
            raise ValueError(f"patch target {target} matches nothing")
        for doc in matched:
            for op in bodies[0]:
                _json6902(doc, op)
        return docs
    for body in bodies:  # strategic merge, targeted by the patch's own kind and name
        matched = [d for d in docs if d["kind"] == body["kind"]
                   and d["metadata"]["name"] == body["metadata"]["name"]]
        if len(matched) != 1:
            raise ValueError(f"strategic merge patch for {body['kind']}/"
                             f"{body['metadata']['name']} matches {len(matched)} resources")
        _merge(matched[0], body)
    return docs


def _matches(doc: Doc, target: Doc) -> bool:
    if set(target) - {"kind", "name"}:
        raise UnsupportedFeature(f"patch target fields {sorted(target)}")
    return (("kind" not in target or re.fullmatch(target["kind"], doc["kind"]) is not None)
            and ("name" not in target
                 or re.fullmatch(target["name"], doc["metadata"]["name"]) is not None))


def _merge(into: Any, patch: Any) -> Any:
    if isinstance(into, dict) and isinstance(patch, dict):
        for k, v in patch.items():
            into[k] = _merge(into[k], v) if k in into else copy.deepcopy(v)
        return into
    if (isinstance(into, list) and isinstance(patch, list) and patch
            and all(isinstance(x, dict) and "name" in x for x in into + patch)):
        by_name = {x["name"]: x for x in into}
        for item in patch:
            if item["name"] in by_name:
                _merge(by_name[item["name"]], item)
            else:
                into.append(copy.deepcopy(item))
        return into
    return copy.deepcopy(patch)


def _json6902(doc: Doc, op: Doc) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    parent: Any = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    kind = op["op"]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if kind == "add":
            parent.insert(index, copy.deepcopy(op["value"]))
        elif kind == "replace":
            parent[index] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[index]
        else:
            raise UnsupportedFeature(f"JSON 6902 op {kind}")
        return
    if kind == "add":
        parent[last] = copy.deepcopy(op["value"])
    elif kind == "replace":
        if last not in parent:
            raise ValueError(f"replace of a missing path {op['path']} in {key(doc)}")
        parent[last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del parent[last]
    else:
        raise UnsupportedFeature(f"JSON 6902 op {kind}")


# -- images ---------------------------------------------------------------------------------


def _set_image(docs: list[Doc], image: Doc) -> None:
    if set(image) - {"name", "newName", "newTag"}:
        raise UnsupportedFeature(f"image options {sorted(image)}")
    for container in _containers(docs):
        name, _, tag = container["image"].partition(":")
        if name == image["name"]:
            container["image"] = (f"{image.get('newName', name)}:"
                                  f"{image.get('newTag', tag)}").rstrip(":")


def _containers(node: Any) -> list[Doc]:
    found: list[Doc] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("containers", "initContainers") and isinstance(v, list):
                found += [c for c in v if isinstance(c, dict) and "image" in c]
            else:
                found += _containers(v)
    elif isinstance(node, list):
        for item in node:
            found += _containers(item)
    return found
