"""The OpenAPI document names the schemas of purpose-built niches as components."""

from __future__ import annotations

import json
from typing import Any

from kith.gateway.openapi import document
from kith.gateway.operations import api
from kith.gateway.routes import load
from kith.gateway.schema import validate

NEW_OPERATIONS = [
    ("get", "/v1/niches/{niche_id}/profile"), ("put", "/v1/niches/{niche_id}/profile"),
    ("post", "/v1/niches/{niche_id}/members/{user_id}/endorsements"),
    ("delete", "/v1/niches/{niche_id}/members/{user_id}/endorsements/{skill}"),
    ("get", "/v1/skills"), ("post", "/v1/posts/{post_id}/answer"),
    ("get", "/v1/niches/{niche_id}/shelf"), ("get", "/v1/upcoming"),
]


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if "$ref" in node else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


def test_every_new_operation_uses_named_component_schemas() -> None:
    load()
    doc = document(api.operations)
    components = doc["components"]["schemas"]
    for method, path in NEW_OPERATIONS:
        op = doc["paths"][path][method]
        ok = op["responses"][next(iter(op["responses"]))]
        used = refs(op.get("requestBody", {})) | refs(ok)
        if method != "delete":  # (a 204 without a body has no schema to name)
            assert used & {"MemberProfile", "ProfileInput", "Endorsement", "DirectoryEntry",
                           "Post", "Answer", "ShelfItem", "UpcomingItem"}, (method, path)
    for name in ("Post", "NewPost", "PostEdit", "Book", "Moment", "AnsweredBy", "Person",
                 "MemberProfile", "Skill", "DirectoryEntry", "ShelfItem", "UpcomingItem"):
        assert name in components, name
    assert refs(doc) <= set(components)  # every $ref resolves
    json.dumps(doc)


def test_named_schemas_still_validate_requests_inline() -> None:
    load()
    publish = next(op for op in api.operations
                   if op.method == "POST" and op.path == "/v1/niches/{niche_id}/posts")
    assert publish.body is not None
    assert validate(publish.body, {"type": "moment",
                                   "moment": {"kind": "wedding", "date": "2026-06-01"}}) == {}
    assert "moment.kind" in validate(publish.body, {"moment": {"kind": "x", "date": "d"}})
    assert "nope" in validate(publish.body, {"nope": 1})
