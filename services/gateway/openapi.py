"""The OpenAPI 3.1 document, generated from the route registry, and an HTML page to browse it.

Nothing here is written by hand per endpoint: paths, parameters, bodies,
responses and the error statuses each operation can return all come from the
:class:`~kith.gateway.operations.Operation` records.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

from kith.gateway.operations import Operation
from kith.gateway.schema import Schema, map_of, obj, string

ERROR = obj({"error": obj({
    "code": string(description="stable snake_case reason, e.g. niche_full"),
    "message": string(description="a human sentence"),
    "details": map_of({}),
})}, closed=False)

ERROR_TEXT = {
    400: "invalid input; details name the fields",
    401: "not authenticated",
    403: "authenticated but not allowed",
    404: "not found, or not visible to you",
    409: "conflict (the code says which)",
    413: "request body too large",
    422: "Idempotency-Key reused with a different request",
    429: "rate limited; see Retry-After",
    503: "a dependency is unavailable; retry",
}
STATUS_TEXT = {200: "OK", 201: "Created", 204: "No Content"}


def document(operations: Iterable[Operation], title: str = "Kith gateway",
             version: str = "1") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    components: dict[str, Any] = {"Error": ERROR}
    paths = _hoist(paths, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "The public HTTP/JSON API of Kith (see API.md). Errors are "
                                "`{\"error\": {\"code\", \"message\", \"details\"}}`."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"}},
        },
    }


def _hoist(node: Any, components: dict[str, Any]) -> Any:
    """A copy of ``node`` whose named schemas (``schema.named``) are ``$ref``s to components.

    A nullable use of a named schema refers to it through ``anyOf`` with ``null``.
    """
    if isinstance(node, list):
        return [_hoist(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    copied = {k: _hoist(v, components) for k, v in node.items()}
    name = copied.get("title")
    if not isinstance(name, str) or "type" not in copied:
        return copied
    kind = copied["type"]
    nullable = isinstance(kind, list) and "null" in kind
    plain = {**copied, "type": next(t for t in kind if t != "null")} if nullable else copied
    if components.setdefault(name, plain) != plain:
        return copied  # two different schemas under one name: keep this one inline
    ref = {"$ref": f"#/components/schemas/{name}"}
    return {"anyOf": [ref, {"type": "null"}]} if nullable else ref


def _operation(op: Operation) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in op.path_params.items()
    ]
    params += [{"name": name, "in": "query", "required": False, "schema": schema}
               for name, schema in op.query.items()]
    if op.idempotent_post and not op.stream:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": string(1, 255, pattern="^[\\x21-\\x7e]+$"),
                       "description": "retries with the same key and body return the "
                                      "original response and perform nothing twice"})
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": _responses(op),
    }
    if params:
        spec["parameters"] = params
    if op.body is not None:
        spec["requestBody"] = {"required": bool(op.body.get("required")),
                               "content": {"application/json": {"schema": op.body}}}
    if op.raw_body is not None:
        spec["requestBody"] = {"required": True, "content": {
            op.raw_body: {"schema": {"type": "string", "format": "binary"}}}}
    spec["security"] = [{"bearer": []}] if op.auth else []
    return spec


def _responses(op: Operation) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": STATUS_TEXT.get(op.status, "OK")}
    if op.stream:
        ok["content"] = {"text/event-stream": {"schema": string()}}
    elif op.response is not None:
        ok["content"] = {"application/json": {"schema": op.response}}
    statuses = set(op.errors) | {429, 503}
    if op.body is not None or op.query:
        statuses.add(400)
    if op.body is not None or op.raw_body is not None:
        statuses |= {400, 413}
    if op.auth:
        statuses.add(401)
    if op.path_params:
        statuses.add(404)
    if op.idempotent_post and not op.stream:
        statuses |= {409, 422}
    responses: dict[str, Any] = {str(op.status): ok}
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": ERROR_TEXT.get(status, "error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return responses


def docs_page(spec: dict[str, Any]) -> str:
    """A self-contained HTML rendering of ``spec`` (no scripts, no CDN)."""
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(spec['info']['title'])}</title><style>",
        "body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}",
        "details{border:1px solid #ddd;border-radius:6px;margin:.4rem 0;padding:.3rem .6rem}",
        "summary{cursor:pointer}code,pre{font:13px ui-monospace,monospace}",
        "pre{background:#f6f6f6;padding:.5rem;overflow:auto}",
        ".m{display:inline-block;width:4.5rem;font-weight:bold}",
        ".GET{color:#1565c0}.POST{color:#2e7d32}.PATCH{color:#ef6c00}.DELETE{color:#c62828}",
        "</style></head><body>",
        f"<h1>{html.escape(spec['info']['title'])}</h1>",
        f"<p>{html.escape(spec['info']['description'])} "
        "Machine-readable: <a href='/openapi.json'>/openapi.json</a>.</p>",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append((method.upper(), path, op))
    for tag, ops in by_tag.items():
        out.append(f"<h2>{html.escape(tag)}</h2>")
        for method, path, op in ops:
            lock = " 🔒" if op.get("security") else ""
            out.append(f"<details><summary><span class='m {method}'>{method}</span>"
                       f"<code>{html.escape(path)}</code> — {html.escape(op['summary'])}{lock}"
                       "</summary>")
            if op.get("parameters"):
                out.append("<h4>Parameters</h4><ul>")
                for p in op["parameters"]:
                    out.append(f"<li><code>{html.escape(p['name'])}</code> ({p['in']}) "
                               f"<code>{html.escape(json.dumps(p['schema']))}</code></li>")
                out.append("</ul>")
            if body := op.get("requestBody"):
                schema = next(iter(body["content"].values()))["schema"]
                out.append(f"<h4>Body</h4>{_pre(schema)}")
            out.append("<h4>Responses</h4><ul>")
            for status, resp in op["responses"].items():
                out.append(f"<li><b>{status}</b> {html.escape(resp['description'])}")
                content = resp.get("content", {}).get("application/json")
                if content and "$ref" not in content["schema"]:
                    out.append(_pre(content["schema"]))
                out.append("</li>")
            out.append("</ul></details>")
    out.append("</body></html>")
    return "".join(out)


def _pre(schema: Schema) -> str:
    return f"<pre>{html.escape(json.dumps(schema, indent=2, ensure_ascii=False))}</pre>"
