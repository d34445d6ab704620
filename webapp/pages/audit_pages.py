"""The audit log page."""

from __future__ import annotations

from flask import render_template, request
from flask_login import login_required
from sqlalchemy import select

from core import audit
from core.bundle import public_key_pem
from core.db import session_scope
from core.models import AuditEvent, Role
from core.storage import get_storage
from webapp.auth import settings
from webapp.pages.blueprint import pages
from webapp.pages.helpers import _require, _user


@pages.get("/audit")
@login_required
def audit_page():  # type: ignore[no-untyped-def]
    args = request.args
    filters = {k: (args.get(k) or "").strip() for k in ("action", "actor", "object_type", "object_id")}
    try:
        limit = max(1, min(int(args.get("limit") or 200), 2000))
    except ValueError:
        limit = 200
    with session_scope(settings()) as s:
        user = _user(s)
        _require(user, Role.steward, Role.admin)
        q = select(AuditEvent).order_by(AuditEvent.id.desc())
        if filters["action"]:
            q = q.where(AuditEvent.action.like(filters["action"].replace("%", r"\%") + "%", escape="\\"))
        if filters["actor"]:
            q = q.where(AuditEvent.actor == filters["actor"])
        if filters["object_type"]:
            q = q.where(AuditEvent.object_type == filters["object_type"])
        if filters["object_id"]:
            q = q.where(AuditEvent.object_id == filters["object_id"])
        events = [
            {
                "id": e.id,
                "at": e.created_at.isoformat(timespec="seconds"),
                "actor": e.actor,
                "action": e.action,
                "object_type": e.object_type,
                "object_id": e.object_id,
                "detail": e.detail or {},
                "hash": e.hash,
            }
            for e in s.execute(q.limit(limit)).scalars()
        ]
        actions = sorted(s.execute(select(AuditEvent.action).distinct()).scalars())
        object_types = sorted(t for t in s.execute(select(AuditEvent.object_type).distinct()).scalars() if t)
        check = audit.verify_anchored(s, get_storage(settings()), public_key_pem(settings()))
    return render_template(
        "audit.html",
        events=events,
        filters=filters,
        limit=limit,
        actions=actions,
        object_types=object_types,
        chain=check.to_dict(),
    )
