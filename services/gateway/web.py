"""The reference web app (``web/``, built by Vite into ``web/dist``) served from the same origin.

``/`` and every app route (any GET path outside the API) answer the app's
``index.html`` (single-page-app fallback); files under the build folder are
served as they are, hashed assets with a long cache life. ``/docs`` is
Swagger UI, copied from the ``swagger-ui-dist`` npm package into the build
(``dist/docs/``) — nothing is fetched from a CDN. Without a build the gateway
still works: ``/`` explains how to build the app and ``/docs`` falls back to
the static listing of :func:`kith.gateway.openapi.docs_page`.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, request, send_from_directory

from kith.gateway.errors import not_found

# First path segments that belong to the API, never to the app.
API_PREFIXES = ("v1", "healthz", "readyz", "metrics", "openapi.json")
NOT_BUILT = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Kith</title>"
             "</head><body><main><h1>Kith</h1><p>The web app is not built. Run "
             "<code>make web</code> (or <code>make run</code>, which builds it) and reload. "
             "The API is browsable at <a href='/docs'>/docs</a>.</p></main></body></html>")


def default_web_dir() -> Path:
    """``web/dist`` of this checkout."""
    return Path(__file__).resolve().parents[2] / "web" / "dist"


def install_web(app: Flask, web_dir: Path) -> None:
    """Register ``/`` and the SPA fallback (call after the API's own routes)."""

    def index() -> Response:
        if not (web_dir / "index.html").is_file():
            return Response(NOT_BUILT, mimetype="text/html")
        response = send_from_directory(web_dir, "index.html", max_age=0)
        response.headers["Cache-Control"] = "no-cache"
        return response

    def app_path(path: str) -> Response:
        if path.split("/", 1)[0] in API_PREFIXES:
            raise not_found()
        if (web_dir / path).is_file():
            immutable = path.startswith("assets/")
            response = send_from_directory(web_dir, path,
                                           max_age=31536000 if immutable else 0)
            if immutable:
                response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            return response
        if "." in path.rsplit("/", 1)[-1]:  # a missing file, not an app route
            raise not_found()
        return index()

    app.add_url_rule("/", endpoint="web_index", view_func=index, methods=["GET"])
    app.add_url_rule("/<path:path>", endpoint="web_app", view_func=app_path, methods=["GET"])


def docs_html(web_dir: Path) -> str | None:
    """The Swagger UI page of the build, or ``None`` when the app is not built."""
    page = web_dir / "docs" / "index.html"
    return page.read_text(encoding="utf-8") if page.is_file() else None


CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Request-Id"
CORS_EXPOSE_HEADERS = ("Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
                       "X-Request-Id, Idempotent-Replayed, Location")


def install_cors(app: Flask, origins: tuple[str, ...]) -> None:
    """Let browser apps on ``origins`` (``KITH_GATEWAY_CORS_ORIGINS``) call the API.

    The app served at ``/`` is same-origin and needs none of this. Bearer tokens
    travel in headers, never cookies, so credentials are not allowed.
    """
    allowed = frozenset(origins)
    if not allowed:
        return

    @app.after_request
    def cors(response: Response) -> Response:
        origin = request.headers.get("Origin")
        response.vary.add("Origin")
        if origin and (origin in allowed or "*" in allowed):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
                response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
                response.headers["Access-Control-Max-Age"] = "600"
        return response
