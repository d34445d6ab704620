"""The audit log's anchors under /api/v1/audit/ (bearer-token auth).

`checkpoints`: every signed checkpoint kept in storage, with the key that signs them, so anyone
can check them offline. `position/<n>`: how many events the log holds and the hash of its n-th
event, so whoever holds a bundle can compare the head its manifest recorded with the live log.
`verify`: the chain checked against every checkpoint (stewards and admins).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify
from flask.blueprints import BlueprintSetupState

from core import audit
from core.bundle import key_fingerprint, public_key_pem
from core.db import session_scope
from core.errors import Forbidden, InvalidRequest
from core.models import Role
from core.storage import get_storage
from webapp.auth import api_user, settings

__all__ = ["api_audit"]

api_audit = Blueprint("api_audit", __name__, url_prefix="/api/v1/audit")


@api_audit.record_once
def _sign_checkpoints_here(state: BlueprintSetupState) -> None:
    """Commits made by this app sign audit checkpoints with its settings' key and storage."""
    audit.register_anchor(state.app.config["SYNTHGATE"])


@api_audit.get("/checkpoints")
def checkpoints() -> Response:
    api_user()
    cfg = settings()
    storage = get_storage(cfg)
    docs = [
        {"key": key, **json.loads(storage.get_bytes(key))}
        for key in storage.list_keys(audit.CHECKPOINT_PREFIX)
        if key.endswith(".json")
    ]
    pem = public_key_pem(cfg)
    return jsonify(
        {"checkpoints": docs, "algorithm": "Ed25519", "public_key_pem": pem, "fingerprint": key_fingerprint(pem)}
    )


@api_audit.get("/position/<int:position>")
def position(position: int) -> Response:
    api_user()
    if position < 1:
        raise InvalidRequest("positions count events from 1", field="position")
    with session_scope(settings()) as s:
        count, ev = audit.event_at(s, position)
        return jsonify(
            {"position": position, "count": count, "event_id": ev.id if ev else None, "hash": ev.hash if ev else None}
        )


@api_audit.get("/verify")
def verify() -> Response:
    user = api_user()
    if user.role not in (Role.steward.value, Role.admin.value):
        raise Forbidden("the audit log is for stewards and admins")
    cfg = settings()
    with session_scope(cfg) as s:
        check = audit.verify_anchored(s, get_storage(cfg), public_key_pem(cfg))
    return jsonify({"chain": check.to_dict()})
