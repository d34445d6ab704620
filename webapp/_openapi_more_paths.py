"""The account, token, job, audit and candidate paths of the OpenAPI document (webapp/openapi.py)."""

from __future__ import annotations

from typing import Any

from webapp._openapi_common import _DATASET, _JOB, _json, _op, _ref


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
            "eta_seconds": {"type": ["integer", "null"], "description": "the running stage's estimated seconds left"},
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


def _erasure_paths() -> dict[str, Any]:
    """Erasing a dataset's raw data (webapp/api.py `erase_raw`, core/erasure.py)."""
    erasure = {
        "type": "object",
        "properties": {
            "dataset": {"type": "string"},
            "raw_erased_at": {"type": "string", "format": "date-time"},
            "raw_erased_by": {"type": "string"},
            "cancelled_releases": {"type": "array", "items": {"type": "object"}},
            "releases_erased": {"type": "array", "items": {"type": "integer"}},
            "approved_releases_kept": {"type": "array", "items": {"type": "integer"}},
            "files_removed_from_approved": {"type": "integer"},
        },
    }
    reason = {"type": "string", "minLength": 1, "maxLength": 2000, "description": "why (kept in the audit log)"}
    return {
        "/datasets/{ref}/erase-raw": {
            "post": _op(
                "Erase raw data",
                "datasets",
                {"200": _json({"type": "object", "properties": {"erasure": erasure, "dataset": _ref("Dataset")}})},
                params=[_DATASET],
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "required": ["reason"], "properties": {"reason": reason}}
                        }
                    },
                },
                errors=("400", "401", "403", "404", "409"),
                description="Steward or admin. Deletes the raw table and every unreleased file derived from it "
                "(outputs of releases not approved, kept samples, re-runs); stops the dataset's unfinished "
                "releases that read rows (a reservation never used is given back, a charge for data read stays). "
                "The ledger, the audit trail and approved releases' bundles stay. Releases that read rows, "
                "re-runs and schema edits are refused afterwards (409 raw_erased). Audited (dataset.erase_raw); "
                "a second erasure is 409 already_erased.",
            )
        },
    }


def _estimate_paths() -> dict[str, Any]:
    """The time estimate of a release before it is requested (webapp/api.py dataset_estimate)."""
    ok = {"200": _json({"type": "object", "properties": {"estimate": _ref("Estimate")}})}
    query = [
        _DATASET,
        {"name": "method", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "epsilon", "in": "query", "schema": {"type": "number"}},
        {"name": "delta", "in": "query", "schema": {"type": "number"}},
        {"name": "rows", "in": "query", "schema": {"type": "integer"}},
        {
            "name": "option",
            "in": "query",
            "description": "a method option as name=value (repeatable)",
            "schema": {"type": "array", "items": {"type": "string"}},
            "style": "form",
            "explode": True,
        },
    ]
    note = (
        "From public facts only: the schema, the row count the steward declared public (else the rows asked "
        "for, else the default) and the options. Over the policy's max_estimated_minutes, `suggestions` "
        "lists option changes (or faster methods) that fit; a release request over it is refused (422 "
        "estimate_over_limit) before any budget is reserved."
    )
    body = {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object", "description": "a release request's body"}}},
    }
    return {
        "/datasets/{ref}/estimate": {
            "get": _op(
                "Estimate a release",
                "datasets",
                ok,
                params=query,
                errors=("400", "401", "404", "409"),
                description=note,
            ),
            "post": _op(
                "Estimate a release from a request body",
                "datasets",
                ok,
                params=[_DATASET],
                body=body,
                errors=("400", "401", "404", "409"),
                description=note,
            ),
        }
    }
