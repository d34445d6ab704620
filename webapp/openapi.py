"""The OpenAPI 3 document of the JSON API, served at /api/v1/openapi.json.

Written by hand next to webapp/api.py; the request body of a release is taken
from the pydantic model the API validates with, so the two cannot drift, and
a test checks that every API route is documented and nothing else is.
"""

from __future__ import annotations

from typing import Any

__all__ = ["API_VERSION", "openapi_document"]

API_VERSION = "1"

_ERROR_CODES = {
    "400": "Invalid request: the message says which field and what to change",
    "401": "Missing, wrong or revoked API token",
    "403": "Not allowed for your role, or refused by the dataset's policy or the four-eyes rule",
    "404": "No such object, or not one you may see",
    "409": "Conflicts with the object's state or the remaining budget",
    "413": "Upload larger than the limit",
    "422": "The table does not fit its schema",
    "429": "Too many failed logins or tokens, or API requests: try again after Retry-After seconds",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: str) -> dict[str, Any]:
    return {c: {"$ref": f"#/components/responses/E{c}"} for c in codes}


def _op(
    summary: str,
    tag: str,
    responses: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    public: bool = False,
    description: str | None = None,
    errors: tuple[str, ...] = ("401",),
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {**responses, **_errors(*(() if public else errors))},
    }
    op["operationId"] = summary.lower().replace(" ", "_").replace("'", "").replace(",", "")[:60]
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    if public:
        op["security"] = []
    return op


_DATASET = {
    "name": "ref",
    "in": "path",
    "required": True,
    "description": "dataset id or name",
    "schema": {"type": "string"},
}
_JOB = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_TOKEN = {"name": "token_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_USER = {"name": "username", "in": "path", "required": True, "schema": {"type": "string"}}


def _components() -> dict[str, Any]:
    from core.releases import KINDS, ReleaseRequest

    request_schema = ReleaseRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    request_schema.pop("$defs", None)
    request_schema["properties"]["kind"] = {
        "anyOf": [{"type": "string", "enum": list(KINDS)}, {"type": "null"}],
        "default": None,
    }
    cost = {
        "type": "object",
        "description": "exact values as fraction text ('1/10'); epsilon 'inf' for non-DP",
        "properties": {
            "epsilon": {"type": "string"},
            "delta": {"type": "string"},
            "rho": {"type": ["string", "null"]},
            "dp": {"type": "boolean"},
        },
        "additionalProperties": True,
    }
    return {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "API token (sg_...), shown once when created; revocable",
            },
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": "session",
                "description": "the web pages' session cookie: GET requests only",
            },
        },
        "responses": {f"E{code}": _json(_ref("Error"), text) for code, text in _ERROR_CODES.items()},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string", "description": "stable, machine-readable"},
                            "message": {"type": "string", "description": "what to change"},
                            "field": {"type": "string", "description": "the field the error is about"},
                        },
                    }
                },
            },
            "Cost": cost,
            "Dataset": {
                "type": "object",
                "required": ["id", "name", "schema", "schema_confirmed", "budget", "policy"],
                "properties": {
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "description": {"type": ["string", "null"]},
                    "schema": {"type": "object", "description": "the public schema (privacy/schema.py)"},
                    "schema_confirmed": {"type": "boolean"},
                    "schema_version": {
                        "type": ["integer", "null"],
                        "description": "the confirmed schema version in force; null while proposed",
                    },
                    "budget": {
                        "type": "object",
                        "properties": {"epsilon": {"type": "string"}, "delta": {"type": "string"}},
                    },
                    "policy": {"type": "object"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "internal": {"type": "object", "description": "stewards and admins only: rows, file, SHA-256"},
                    "grants": {"type": "array", "items": {"type": "string"}, "description": "stewards and admins only"},
                    "ledger": _ref("Ledger"),
                },
            },
            "Ledger": {
                "type": "object",
                "description": "spent, reserved and remaining budget under basic and zCDP composition",
                "properties": {
                    "dataset": {"type": "string"},
                    "policy": {"type": "string"},
                    "budget": cost,
                    "spent": cost,
                    "reserved": cost,
                    "remaining": {
                        "type": "object",
                        "properties": {"basic": {"type": "object"}, "zcdp": {"type": ["object", "null"]}},
                    },
                    "guarantee": {"type": "string"},
                    "formal_guarantee": {"type": "boolean"},
                    "history": {"type": "array", "items": {"type": "object"}},
                },
            },
            "ReleaseRequest": request_schema,
            "Release": {
                "type": "object",
                "required": ["id", "dataset", "method", "status", "progress"],
                "properties": {
                    "id": {"type": "integer"},
                    "dataset": {
                        "type": "object",
                        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                    },
                    "requester": {"type": "string"},
                    "kind": {"type": "string"},
                    "method": {"type": "string"},
                    "epsilon": {"type": "string"},
                    "delta": {"type": "string"},
                    "rows": {"type": ["integer", "null"]},
                    "target": {"type": ["string", "null"]},
                    "options": {"type": "object"},
                    "schema_version": {
                        "type": ["integer", "null"],
                        "description": "the dataset's public schema version the release runs under",
                    },
                    "status": {
                        "type": "string",
                        "enum": ["queued", "running", "awaiting_approval", "approved", "rejected", "failed"],
                    },
                    "stage": {"type": ["string", "null"]},
                    "progress": {"type": "number", "minimum": 0, "maximum": 1},
                    "message": {"type": ["string", "null"]},
                    "error_code": {"type": ["string", "null"]},
                    "cost": {"anyOf": [cost, {"type": "null"}]},
                    "charge": {"type": ["string", "null"], "enum": ["reserved", "spent", "released", None]},
                    "decision": {"type": ["object", "null"]},
                    "can_download": {"type": "boolean"},
                    "gate": {"type": ["object", "null"], "description": "stewards and admins only"},
                    "summary": {"type": ["object", "null"], "description": "stewards and admins only"},
                },
            },
            "Method": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "guarantee": {"type": "string", "enum": ["dp", "non-dp", "data-free"]},
                    "dp": {"type": "boolean"},
                    "zcdp": {"type": "boolean"},
                    "needs_delta": {"type": "boolean"},
                    "options": {"type": "object"},
                },
            },
            "AuditEvent": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "at": {"type": "string", "format": "date-time"},
                    "actor": {"type": "string"},
                    "action": {"type": "string"},
                    "object_type": {"type": ["string", "null"]},
                    "object_id": {"type": ["string", "null"]},
                    "detail": {"type": "object"},
                    "hash": {"type": "string"},
                },
            },
        },
    }


def _paths() -> dict[str, Any]:
    dataset_obj = {"type": "object", "properties": {"dataset": _ref("Dataset")}}
    release_obj = {"type": "object", "properties": {"release": _ref("Release")}}
    return {
        "/health": {"get": _op("Health check", "service", {"200": _json({"type": "object"})}, public=True)},
        "/openapi.json": {"get": _op("This document", "service", {"200": _json({"type": "object"})}, public=True)},
        "/me": {
            "get": _op(
                "Who am I",
                "service",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "id": {"type": "integer"},
                                "username": {"type": "string"},
                                "role": {"type": "string"},
                            },
                        }
                    )
                },
            )
        },
        "/methods": {
            "get": _op(
                "List methods",
                "service",
                {
                    "200": _json(
                        {"type": "object", "properties": {"methods": {"type": "array", "items": _ref("Method")}}}
                    )
                },
                description="Every synthesizer with its one-line description and whether it is DP.",
            )
        },
        "/signing-key": {
            "get": _op(
                "Bundle signing key",
                "bundles",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "algorithm": {"type": "string"},
                                "public_key_pem": {"type": "string"},
                                "fingerprint": {"type": "string"},
                            },
                        }
                    )
                },
                public=True,
                description="The server's Ed25519 public key, to check bundles (`synthgate bundle verify`).",
            )
        },
        "/datasets": {
            "get": _op(
                "List datasets",
                "datasets",
                {
                    "200": _json(
                        {"type": "object", "properties": {"datasets": {"type": "array", "items": _ref("Dataset")}}}
                    )
                },
                description="Stewards and admins see every dataset; analysts the ones granted to them.",
            ),
            "post": _op(
                "Register a dataset",
                "datasets",
                {
                    "201": _json(
                        {"type": "object", "properties": {"dataset": _ref("Dataset"), "issues": {"type": "array"}}},
                        "Created",
                    )
                },
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file", "name"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "name": {"type": "string"},
                                    "schema": {"type": "string", "description": "YAML text or a file"},
                                    "policy": {"type": "string", "description": "YAML text or a file"},
                                    "epsilon_budget": {"type": "string"},
                                    "delta_budget": {"type": "string"},
                                    "description": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                errors=("400", "401", "403", "409", "413", "422"),
                description="Steward only. Without a schema one is proposed from the data and must be "
                "confirmed before releases.",
            ),
        },
        "/datasets/{ref}": {
            "get": _op(
                "Show a dataset", "datasets", {"200": _json(dataset_obj)}, params=[_DATASET], errors=("401", "404")
            )
        },
        "/datasets/{ref}/schema": {
            "put": _op(
                "Confirm the public schema",
                "datasets",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "dataset": _ref("Dataset"),
                                "issues": {"type": "array", "items": {"type": "object"}},
                            },
                        }
                    )
                },
                params=[_DATASET],
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["schema"],
                                "properties": {
                                    "schema": {"oneOf": [{"type": "object"}, {"type": "string"}]},
                                    "note": {
                                        "type": "string",
                                        "maxLength": 2000,
                                        "description": "what changed and why (stewards and admins see it)",
                                    },
                                    "base_version": {
                                        "type": "integer",
                                        "description": "the version edited; refused "
                                        "with 409 when another was confirmed since",
                                    },
                                },
                            }
                        }
                    },
                },
                errors=("400", "401", "403", "404", "409", "422"),
                description="Steward only. The first confirmation records version 1; a schema that differs from the "
                "one in force is recorded as the next version (releases already requested keep theirs); "
                "the same schema again records nothing. Checked against the stored table; `issues` "
                "holds the validation notes and the disclosure preflight warnings.",
            )
        },
        "/datasets/{ref}/schema/versions": {
            "get": _op(
                "Public schema history",
                "datasets",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "dataset": {"type": "string"},
                                "versions": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "version": {"type": "integer"},
                                            "confirmed_at": {"type": "string", "format": "date-time"},
                                            "confirmed_by": {"type": "string"},
                                            "note": {"type": ["string", "null"]},
                                            "schema": {"type": "object"},
                                        },
                                    },
                                },
                            },
                        }
                    )
                },
                params=[_DATASET],
                errors=("401", "403", "404"),
                description="Stewards and admins: every confirmed version, newest first.",
            )
        },
        "/datasets/{ref}/policy": {
            "put": _op(
                "Change policy or budget",
                "datasets",
                {"200": _json(dataset_obj)},
                params=[_DATASET],
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "policy": {"type": ["object", "string", "null"]},
                                    "epsilon_budget": {"type": ["string", "number"]},
                                    "delta_budget": {"type": ["string", "number"]},
                                },
                            }
                        }
                    },
                },
                errors=("400", "401", "403", "404", "409"),
            )
        },
        "/datasets/{ref}/grants": {
            "post": _op(
                "Grant access",
                "datasets",
                {"201": _json(dataset_obj, "Granted")},
                params=[_DATASET],
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["user"],
                                "properties": {"user": {"type": "string"}},
                            }
                        }
                    },
                },
                errors=("401", "403", "404"),
            )
        },
        "/datasets/{ref}/grants/{username}": {
            "delete": _op(
                "Revoke access",
                "datasets",
                {"200": _json({"type": "object", "properties": {"revoked": {"type": "boolean"}}})},
                params=[_DATASET, _USER],
                errors=("401", "403", "404"),
            )
        },
        "/datasets/{ref}/ledger": {
            "get": _op(
                "Budget ledger",
                "datasets",
                {
                    "200": _json(
                        {"type": "object", "properties": {"ledger": _ref("Ledger"), "text": {"type": "string"}}}
                    )
                },
                params=[_DATASET],
                errors=("401", "404"),
            )
        },
        "/releases": {
            "get": _op(
                "List releases",
                "releases",
                {
                    "200": _json(
                        {"type": "object", "properties": {"releases": {"type": "array", "items": _ref("Release")}}}
                    )
                },
                params=[
                    {"name": "status", "in": "query", "schema": {"type": "string"}},
                    {"name": "dataset", "in": "query", "schema": {"type": "string"}},
                ],
                description="Analysts see their own requests and approved releases of datasets granted to them.",
            ),
            "post": _op(
                "Request a release",
                "releases",
                {"202": _json(release_obj, "Accepted and queued")},
                body={"required": True, "content": {"application/json": {"schema": _ref("ReleaseRequest")}}},
                errors=("400", "401", "403", "404", "409"),
                description="Validates, reserves the cost in the ledger atomically, and queues the job. "
                "A budget that cannot pay is refused (409) before anything is queued.",
            ),
        },
        "/releases/{job_id}": {
            "get": _op("Show a release", "releases", {"200": _json(release_obj)}, params=[_JOB], errors=("401", "404"))
        },
        "/releases/{job_id}/approve": {
            "post": _op(
                "Approve a release",
                "releases",
                {"200": _json(release_obj)},
                params=[_JOB],
                body={
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "comment": {"type": "string"},
                                    "override": {"type": "string", "description": "required when the gate failed"},
                                    "include_internal": {"type": "boolean"},
                                    "candidate": {
                                        "type": "integer",
                                        "minimum": 0,
                                        "description": "which candidate to release when post-processing was re-run "
                                        "(0: the original run); default the latest ready one",
                                    },
                                },
                            }
                        }
                    }
                },
                errors=("400", "401", "403", "404", "409"),
                description="Steward only, never the requester (four eyes). Signs the bundle, built from the chosen "
                "candidate's artifacts.",
            )
        },
        "/releases/{job_id}/reject": {
            "post": _op(
                "Reject a release",
                "releases",
                {"200": _json(release_obj)},
                params=[_JOB],
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["comment"],
                                "properties": {"comment": {"type": "string"}},
                            }
                        }
                    },
                },
                errors=("400", "401", "403", "404", "409"),
                description="Steward only. The budget is not refunded.",
            )
        },
        "/releases/{job_id}/report": {
            "get": _op(
                "Release report",
                "releases",
                {
                    "200": {
                        "description": "The report",
                        "content": {
                            "text/html": {"schema": {"type": "string"}},
                            "application/json": {"schema": {"type": "object"}},
                        },
                    }
                },
                params=[
                    _JOB,
                    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["html", "json"]}},
                ],
                errors=("401", "403", "404"),
                description="Internal report for stewards and admins; the public report for the requester once "
                "approved.",
            )
        },
        "/releases/{job_id}/bundle": {
            "get": _op(
                "Download the bundle",
                "bundles",
                {
                    "200": {
                        "description": "The signed zip (Content-Disposition: attachment; Cache-Control: no-store)",
                        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                    }
                },
                params=[_JOB],
                errors=("401", "403", "404", "409"),
                description="Approved releases only; the requester, stewards and admins. Audited.",
            )
        },
        "/tokens": {
            "post": _op(
                "Create an API token",
                "tokens",
                {
                    "201": _json(
                        {
                            "type": "object",
                            "properties": {
                                "token": {"type": "string"},
                                "id": {"type": "integer"},
                                "note": {"type": "string"},
                            },
                        },
                        "Created: shown once",
                    )
                },
                body={
                    "content": {
                        "application/json": {"schema": {"type": "object", "properties": {"label": {"type": "string"}}}}
                    }
                },
            )
        },
        "/tokens/{token_id}": {
            "delete": _op(
                "Revoke an API token",
                "tokens",
                {"200": _json({"type": "object", "properties": {"revoked": {"type": "integer"}}})},
                params=[_TOKEN],
                errors=("401", "404"),
                description="Your own tokens; an admin may revoke any token.",
            )
        },
        "/audit": {
            "get": _op(
                "Audit log",
                "audit",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "events": {"type": "array", "items": _ref("AuditEvent")},
                                "chain": {
                                    "type": "object",
                                    "properties": {
                                        "ok": {"type": "boolean"},
                                        "events": {"type": "integer"},
                                        "first_bad_id": {"type": ["integer", "null"]},
                                        "reason": {"type": ["string", "null"]},
                                    },
                                },
                            },
                        }
                    )
                },
                params=[
                    {"name": "action", "in": "query", "schema": {"type": "string"}, "description": "prefix"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 5000}},
                ],
                errors=("401", "403"),
                description="Stewards and admins. Verifies the hash chain.",
            )
        },
    }


def _account_paths() -> dict[str, Any]:
    """Accounts and the changes awaiting a second steward (webapp/api_accounts.py)."""
    user_obj = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "username": {"type": "string"},
            "role": {"type": "string"},
            "active": {"type": "boolean"},
            "must_change_password": {"type": "boolean"},
            "email": {"type": ["string", "null"]},
            "created_at": {"type": ["string", "null"]},
        },
    }
    change_obj = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["role", "budget"]},
            "object_type": {"type": "string"},
            "object_id": {"type": "integer"},
            "payload": {"type": "object"},
            "status": {"type": "string"},
            "requested_by": {"type": "string"},
            "requested_at": {"type": ["string", "null"]},
            "decided_at": {"type": ["string", "null"]},
            "reason": {"type": ["string", "null"]},
        },
    }
    with_change = {"type": "object", "properties": {"user": user_obj, "awaiting_confirmation": change_obj}}
    uid = {"name": "user_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    cid = {"name": "change_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    comment = {
        "content": {"application/json": {"schema": {"type": "object", "properties": {"comment": {"type": "string"}}}}}
    }
    return {
        "/users": {
            "get": _op(
                "List users",
                "accounts",
                {"200": _json({"type": "object", "properties": {"users": {"type": "array", "items": user_obj}}})},
                errors=("401", "403"),
                description="Admin only.",
            ),
            "post": _op(
                "Create a user",
                "accounts",
                {"201": _json(with_change, "Created")},
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["username", "role", "password"],
                                "properties": {
                                    "username": {"type": "string"},
                                    "role": {"type": "string"},
                                    "password": {"type": "string"},
                                    "email": {"type": "string", "description": "where notifications go"},
                                },
                            }
                        }
                    },
                },
                errors=("400", "401", "403", "409"),
                description="Admin only. The user must change the password at first login; a "
                "steward or admin role waits for a second steward (awaiting_confirmation).",
            ),
        },
        "/users/{user_id}/role": {
            "put": _op(
                "Change a user's role",
                "accounts",
                {
                    "200": _json(with_change),
                    "202": _json(with_change, "Accepted: takes effect when another steward confirms it"),
                },
                params=[uid],
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["role"],
                                "properties": {"role": {"type": "string"}},
                            }
                        }
                    },
                },
                errors=("400", "401", "403", "404", "409"),
                description="Admin only. Ends the user's sessions when it takes effect.",
            )
        },
        "/users/{user_id}/disable": {
            "post": _op(
                "Disable a user",
                "accounts",
                {"200": _json({"type": "object", "properties": {"user": user_obj}})},
                params=[uid],
                errors=("401", "403", "404", "409"),
                description="Admin only. Ends their sessions.",
            )
        },
        "/users/{user_id}/enable": {
            "post": _op(
                "Enable a user",
                "accounts",
                {"200": _json({"type": "object", "properties": {"user": user_obj}})},
                params=[uid],
                errors=("401", "403", "404"),
                description="Admin only.",
            )
        },
        "/confirmations": {
            "get": _op(
                "Changes awaiting confirmation",
                "accounts",
                {
                    "200": _json(
                        {"type": "object", "properties": {"confirmations": {"type": "array", "items": change_obj}}}
                    )
                },
                errors=("401", "403"),
                description="Stewards and admins: role elevations and budget raises above the ceiling.",
            )
        },
        "/confirmations/{change_id}/confirm": {
            "post": _op(
                "Confirm a change",
                "accounts",
                {"200": _json({"type": "object", "properties": {"change": change_obj}})},
                params=[cid],
                body=comment,
                errors=("400", "401", "403", "404", "409"),
                description="A steward other than the requester (and, for a role, not the user concerned). "
                "The change is applied now.",
            )
        },
        "/confirmations/{change_id}/reject": {
            "post": _op(
                "Reject a change",
                "accounts",
                {"200": _json({"type": "object", "properties": {"change": change_obj}})},
                params=[cid],
                body=comment,
                errors=("401", "403", "404", "409"),
                description="A steward or admin, or the requester withdrawing it.",
            )
        },
    }


def _job_and_audit_paths() -> dict[str, Any]:
    """Cancelling a release (webapp/api_jobs.py) and the audit anchors (webapp/api_audit.py)."""
    chain = {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "events": {"type": "integer"},
            "first_bad_id": {"type": ["integer", "null"]},
            "reason": {"type": ["string", "null"]},
            "problem": {"type": ["string", "null"]},
            "checkpoints": {"type": "integer"},
            "latest_checkpoint": {"type": ["integer", "null"]},
        },
    }
    return {
        "/releases/{job_id}/cancel": {
            "post": _op(
                "Cancel a release",
                "releases",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"cancelled": {"type": "object"}, "release": {"type": "object"}},
                        }
                    )
                },
                params=[_JOB],
                body={
                    "required": False,
                    "content": {
                        "application/json": {"schema": {"type": "object", "properties": {"reason": {"type": "string"}}}}
                    },
                },
                errors=("400", "401", "403", "404", "409"),
                description="Its requester or a steward, while it is queued or running. A queued release gets its "
                "reservation back; a running one that read the data keeps its charge.",
            )
        },
        "/audit/checkpoints": {
            "get": _op(
                "Signed audit checkpoints",
                "audit",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "checkpoints": {"type": "array", "items": {"type": "object"}},
                                "algorithm": {"type": "string"},
                                "public_key_pem": {"type": "string"},
                                "fingerprint": {"type": "string"},
                            },
                        }
                    )
                },
                description="Any user. Each checkpoint is the head (count, last id, hash) signed with the server's "
                "Ed25519 key; anyone can check them offline.",
            )
        },
        "/audit/position/{position}": {
            "get": _op(
                "Audit event at a position",
                "audit",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "position": {"type": "integer"},
                                "count": {"type": "integer"},
                                "event_id": {"type": ["integer", "null"]},
                                "hash": {"type": ["string", "null"]},
                            },
                        }
                    )
                },
                params=[
                    {"name": "position", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
                ],
                errors=("400", "401"),
                description="Any user: the hash a bundle's audit head can be compared with.",
            )
        },
        "/audit/verify": {
            "get": _op(
                "Verify the audit log against its checkpoints",
                "audit",
                {"200": _json({"type": "object", "properties": {"chain": chain}})},
                errors=("401", "403"),
                description="Stewards and admins.",
            )
        },
    }


def _candidate_paths() -> dict[str, Any]:
    """Re-runs of post-processing on a release's stored sample (webapp/api_candidates.py)."""
    candidate = {
        "type": "object",
        "properties": {
            "number": {"type": "integer", "description": "0 is the original run; 1.. are re-runs"},
            "status": {"type": "string", "enum": ["queued", "running", "ready", "failed"]},
            "stage": {"type": ["string", "null"]},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "message": {"type": ["string", "null"]},
            "error_code": {"type": ["string", "null"]},
            "error": {"type": ["string", "null"]},
            "settings": {"type": ["object", "null"], "description": "the post-processing settings in effect"},
            "requested": {"type": ["object", "null"]},
            "comment": {"type": ["string", "null"]},
            "rows_released": {"type": ["integer", "null"]},
            "gate": {"type": ["string", "null"]},
            "k_anonymity": {"type": ["object", "null"]},
            "gate_checks": {"type": ["array", "null"]},
            "created_at": {"type": ["string", "null"]},
            "finished_at": {"type": ["string", "null"]},
            "timings": {"type": ["object", "null"]},
        },
    }
    rerun_body = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "policy": {
                "type": "object",
                "description": "disclosure-control settings of the dataset policy: k, l, "
                "suppression, remove_real_matches (and max_suppression "
                "where the policy has it)",
            },
            "schema": {
                "type": "object",
                "description": "{columns: {COLUMN: {hierarchy, top_code, bottom_code, "
                "round_to}}}; null removes a field",
            },
            "rows": {
                "type": "integer",
                "minimum": 1,
                "description": "rows to release from the sample (a seeded subset); at most the rows sampled",
            },
            "comment": {"type": "string", "maxLength": 2000},
        },
    }
    return {
        "/releases/{job_id}/rerun": {
            "post": _op(
                "Re-run post-processing",
                "releases",
                {"202": _json({"type": "object", "properties": {"candidate": candidate}}, "Accepted and queued")},
                params=[_JOB],
                body={"content": {"application/json": {"schema": rerun_body}}},
                errors=("400", "401", "403", "404", "409"),
                description="Steward only, while the release awaits approval. Disclosure control, the real-row "
                "checks, the report and the gate run again on the release's stored DP sample with other "
                "settings, as a new candidate. The mechanism does not run again: nothing is charged. "
                "Audited (release.rerun).",
            )
        },
        "/releases/{job_id}/candidates": {
            "get": _op(
                "List candidates",
                "releases",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "candidate": {"type": ["integer", "null"], "description": "the approved candidate"},
                                "candidates": {"type": "array", "items": candidate},
                            },
                        }
                    )
                },
                params=[_JOB],
                errors=("401", "403", "404"),
                description="Stewards and admins: the original run (0) and each re-run, with its settings, rows "
                "released, gate and k-anonymity.",
            )
        },
        "/releases/{job_id}/candidates/{number}/report": {
            "get": _op(
                "Candidate report",
                "releases",
                {
                    "200": {
                        "description": "The candidate's internal report",
                        "content": {
                            "text/html": {"schema": {"type": "string"}},
                            "application/json": {"schema": {"type": "object"}},
                        },
                    }
                },
                params=[
                    _JOB,
                    {"name": "number", "in": "path", "required": True, "schema": {"type": "integer"}},
                    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["html", "json"]}},
                ],
                errors=("401", "403", "404"),
                description="Stewards and admins, once the candidate is ready.",
            )
        },
    }


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
        "paths": {**_paths(), **_account_paths(), **_job_and_audit_paths(), **_candidate_paths()},
        "components": _components(),
    }
