"""The OpenAPI 3 document of the JSON API, served at /api/v1/openapi.json.

Written by hand next to webapp/api.py; the request body of a release is taken
from the pydantic model the API validates with, so the two cannot drift, and
a test checks that every API route is documented and nothing else is.
"""

from __future__ import annotations

from typing import Any

__all__ = ["API_VERSION", "openapi_document"]

from webapp._openapi_common import API_VERSION, _components
from webapp._openapi_more_paths import (
    _account_paths,
    _candidate_paths,
    _erasure_paths,
    _estimate_paths,
    _job_and_audit_paths,
)
from webapp._openapi_paths import _paths


def openapi_document(server_url: str = "/api/v1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of /api/v1."""
    from importlib import metadata

    try:
        version = metadata.version("synthgate")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = "0"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "synthgate API",
            "version": version,
            "description": "Privacy-first data releases: datasets with a public schema and a privacy budget, "
            "release requests charged to a ledger, a four-eyes approval gate, signed bundles. "
            "Errors have the body {error: {code, message, field?}}. State changes need a bearer "
            "token; the pages' session cookie may only read (GET).",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}, {"session": []}],
        "tags": [{"name": t} for t in ("service", "datasets", "releases", "bundles", "tokens", "accounts", "audit")],
        "paths": {
            **_paths(),
            **_account_paths(),
            **_job_and_audit_paths(),
            **_candidate_paths(),
            **_erasure_paths(),
            **_estimate_paths(),
        },
        "components": _components(),
    }
