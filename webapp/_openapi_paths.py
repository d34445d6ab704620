"""The dataset, release and bundle paths of the OpenAPI document (webapp/openapi.py)."""

from __future__ import annotations

from typing import Any

from webapp._openapi_common import _DATASET, _JOB, _TOKEN, _USER, _json, _op, _ref


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
                errors=("400", "401", "403", "404", "409", "422"),
                description="Validates, reserves the cost in the ledger atomically, and queues the job. "
                "A budget that cannot pay is refused (409) before anything is queued, and so is a release "
                "whose time estimate exceeds the policy's max_estimated_minutes (422 estimate_over_limit).",
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
