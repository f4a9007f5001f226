import json

from kith.gateway.errors import STATUS_MAP
from kith.gateway.openapi import docs_page, document
from kith.gateway.operations import PARAM, api
from kith.gateway.routes import load

API_MD = [  # every endpoint of ../shared/API.md
    ("POST", "/v1/accounts"), ("POST", "/v1/sessions"), ("POST", "/v1/sessions/refresh"),
    ("DELETE", "/v1/sessions/current"), ("GET", "/v1/me"), ("PATCH", "/v1/me"),
    ("DELETE", "/v1/me"), ("POST", "/v1/niches"), ("GET", "/v1/niches"),
    ("GET", "/v1/niches/{niche_id}"), ("GET", "/v1/niches/{niche_id}/members"),
    ("POST", "/v1/niches/{niche_id}/invites"), ("POST", "/v1/invites/{code}/accept"),
    ("DELETE", "/v1/niches/{niche_id}/members/{user_id}"), ("POST", "/v1/blocks"),
    ("DELETE", "/v1/blocks/{user_id}"), ("GET", "/v1/blocks"),
    ("POST", "/v1/niches/{niche_id}/posts"), ("GET", "/v1/posts/{post_id}"),
    ("PATCH", "/v1/posts/{post_id}"), ("DELETE", "/v1/posts/{post_id}"),
    ("POST", "/v1/posts/{post_id}/reactions"), ("DELETE", "/v1/posts/{post_id}/reactions/{kind}"),
    ("POST", "/v1/posts/{post_id}/comments"), ("GET", "/v1/posts/{post_id}/comments"),
    ("GET", "/v1/feed"), ("GET", "/v1/niches/{niche_id}/feed"),
    ("POST", "/v1/conversations"), ("GET", "/v1/conversations"),
    ("POST", "/v1/conversations/{conversation_id}/messages"),
    ("GET", "/v1/conversations/{conversation_id}/messages"),
    ("POST", "/v1/conversations/{conversation_id}/read"),
    ("POST", "/v1/stream/tickets"), ("GET", "/v1/stream"), ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"), ("GET", "/docs"),
]


def spec() -> dict:
    load()
    return document(api.operations)


def test_every_api_md_endpoint_is_documented() -> None:
    paths = spec()["paths"]
    missing = [(m, p) for m, p in API_MD if m.lower() not in paths.get(p, {})]
    assert missing == []


def test_operations_are_fully_described() -> None:
    doc = spec()
    ids = set()
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            assert op["summary"] and op["operationId"] not in ids
            ids.add(op["operationId"])
            params = {p["name"]: p for p in op.get("parameters", [])}
            assert set(PARAM.findall(path)) <= set(params)
            if method == "post" and path != "/v1/stream":
                assert "Idempotency-Key" in params and "422" in op["responses"]
            if op["security"]:
                assert "401" in op["responses"]
            assert "429" in op["responses"] and "503" in op["responses"]
    json.dumps(doc)  # serialisable as is


def test_every_integer_input_is_bounded() -> None:
    """Unbounded integers could overflow protobuf fields: a 500 waiting to happen."""
    def walk(schema: dict) -> None:
        if schema.get("type") == "integer":
            assert "minimum" in schema and "maximum" in schema, schema
        for child in schema.get("properties", {}).values():
            walk(child)
        if isinstance(schema.get("items"), dict):
            walk(schema["items"])

    load()
    for op in api.operations:
        for schema in [*op.query.values(), *op.path_params.values(), op.body or {}]:
            walk(schema)


def test_docs_page_is_self_contained() -> None:
    page = docs_page(spec())
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "/v1/niches/{niche_id}/members/{user_id}" in page


def test_status_mapping_matches_the_contract() -> None:
    import grpc

    assert STATUS_MAP[grpc.StatusCode.INVALID_ARGUMENT][0] == 400
    assert STATUS_MAP[grpc.StatusCode.FAILED_PRECONDITION][0] == 409
    assert STATUS_MAP[grpc.StatusCode.ABORTED] == (409, "version_conflict")
    assert STATUS_MAP[grpc.StatusCode.UNAVAILABLE][0] == 503
    assert STATUS_MAP[grpc.StatusCode.DEADLINE_EXCEEDED][0] == 503
