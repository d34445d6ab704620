"""Interactive documentation of the JSON API: Swagger UI 5 (it reads OpenAPI 3.1) from the files of the
`swagger-ui-py` package, served by the app itself (no CDN) under the pages' CSP, reading
/api/v1/openapi.json. Only the files are used, none of that package's code."""

from __future__ import annotations

from flask import Response, abort, render_template, send_from_directory, url_for

from webapp.pages.blueprint import pages

# the two files the page loads; nothing else of the bundle is served (its index.html runs inline script)
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js"})


def _assets_dir() -> str:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("swagger_ui")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        abort(404)
    return str(Path(next(iter(spec.submodule_search_locations))) / "static")


@pages.get("/docs/api")
def api_docs():  # type: ignore[no-untyped-def]
    return render_template("api_docs.html", spec_url=url_for("api.openapi"))


@pages.get("/docs/api/assets/<name>")
def api_docs_asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    resp = send_from_directory(_assets_dir(), name, max_age=86400)
    resp.headers["Cache-Control"] = "public, max-age=86400"
    return resp
