"""Pieces of the OpenAPI document (webapp/openapi.py): error codes, operation and parameter
helpers, and the component schemas."""

from __future__ import annotations

from typing import Any

API_VERSION = "1"

_ERROR_CODES = {
    "400": "Invalid request: the message says which field and what to change",
    "401": "Missing, wrong or revoked API token",
    "403": "Not allowed for your role, or refused by the dataset's policy or the four-eyes rule",
    "404": "No such object, or not one you may see",
    "409": "Conflicts with the object's state or the remaining budget",
    "413": "Upload larger than the limit",
    "422": "The table does not fit its schema, or the request is refused on the public schema alone "
    "(estimate_over_limit, domain_too_large, disclosure_infeasible)",
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
                    "recommended": {
                        "type": ["object", "null"],
                        "description": "GET /datasets/{ref} (?epsilon=): the advised method and its reason, from "
                        "public facts only (privacy/advice.py); null while the schema is proposed",
                    },
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
                    "schema_suggestions": {
                        "type": ["object", "null"],
                        "description": "stewards and admins only: roles suggested with a proposed schema, learned "
                        "from the raw rows (null when the steward gave the schema)",
                        "properties": {
                            "quasi_identifiers": {"type": "array", "items": _ref("RoleSuggestion")},
                            "sensitive": {"type": "array", "items": _ref("RoleSuggestion")},
                            "target": {"oneOf": [_ref("RoleSuggestion"), {"type": "null"}]},
                            "hierarchies": {
                                "type": "object",
                                "description": "column -> hierarchy (band, edges, granularity or groups)",
                                "additionalProperties": {"type": "object"},
                            },
                            "flags": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "column": {"type": "string"},
                                        "issue": {
                                            "type": "string",
                                            "description": "empty, free_text, identifier, no_hierarchy, "
                                            "partial_hierarchy, not_datetime, code_as_number",
                                        },
                                        "message": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                    "raw_erased_at": {"type": ["string", "null"], "description": "when the raw data was erased"},
                    "raw_erased_by": {"type": ["string", "null"], "description": "stewards and admins only"},
                    "raw_erasure_reason": {"type": ["string", "null"], "description": "stewards and admins only"},
                    "retention_until": {
                        "type": ["string", "null"],
                        "description": "when the policy's retention period (retention_days) ends",
                    },
                    "ledger": _ref("Ledger"),
                },
            },
            "RoleSuggestion": {
                "type": "object",
                "description": "a column suggested for a role, and why",
                "properties": {"column": {"type": "string"}, "reason": {"type": "string"}},
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
            "Estimate": {
                "type": "object",
                "description": "Predicted CPU seconds of a release (privacy/estimate.py, docs/time-estimates.md), "
                "from the public schema, the public row count (else the rows asked for) and the options",
                "properties": {
                    "method": {"type": "string"},
                    "rows": {"type": "integer"},
                    "columns": {"type": "integer"},
                    "fit_seconds": {"type": "number"},
                    "report_seconds": {"type": "number"},
                    "total_seconds": {"type": "number"},
                    "low_seconds": {"type": "number"},
                    "high_seconds": {"type": "number"},
                    "text": {"type": "string"},
                    "basis": {"type": "string"},
                    "limit_minutes": {"type": ["number", "null"]},
                    "over_limit": {"type": "boolean"},
                    "suggestions": {"type": "array", "items": {"type": "string"}},
                },
            },
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
                    "eta_seconds": {
                        "type": ["integer", "null"],
                        "description": "while running: the current stage's estimated seconds left, from its "
                        "own progress rate (whole minutes for analysts); null for short or young stages",
                    },
                    "estimate": {
                        "anyOf": [_ref("Estimate"), {"type": "null"}],
                        "description": "the time the request was estimated to take (public facts only)",
                    },
                    "message": {"type": ["string", "null"]},
                    "error_code": {"type": ["string", "null"]},
                    "cost": {"anyOf": [cost, {"type": "null"}]},
                    "charge": {"type": ["string", "null"], "enum": ["reserved", "spent", "released", None]},
                    "decision": {"type": ["object", "null"]},
                    "can_download": {"type": "boolean"},
                    "gate": {"type": ["object", "null"], "description": "stewards and admins only"},
                    "summary": {"type": ["object", "null"], "description": "stewards and admins only"},
                    "purpose": {
                        "type": ["string", "null"],
                        "description": "what the requester said the release is for (`comment` or `purpose`)",
                    },
                    "fit_for_purpose": {
                        "type": ["object", "null"],
                        "description": "an approved release: the steward's answer to 'fit for the stated purpose?' "
                        "(purpose, verdict, text, steward_comment, basis; checks only with include_internal)",
                    },
                    "public": {
                        "type": ["object", "null"],
                        "description": "awaiting approval: what the requester may see before the decision "
                        "(statement, guarantee, summaries or why they are withheld); docs/analyst-outputs.md",
                    },
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
