"""The audit log: append-only and hash-chained.

Each event's hash is sha256 over the previous event's hash and the canonical
JSON of the event, so editing or deleting any row breaks the chain from there
on; `verify_chain` finds the first broken link. Appends are serialised (SQLite:
the write transaction; PostgreSQL: a transaction-scoped advisory lock), and
`prev_hash` is unique, so the chain cannot fork.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.models import AuditEvent, User, utcnow

__all__ = ["record", "verify_chain", "ChainCheck", "GENESIS"]

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x5EA1A0D17  # arbitrary constant: the audit chain's advisory lock


def _canonical(event: AuditEvent) -> str:
    payload = {
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "detail": event.detail or {},
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def _hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + _canonical(event)).encode()).hexdigest()


def record(
    session: Session,
    action: str,
    *,
    actor: User | str | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (it commits with the change it records)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    last = session.execute(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).scalar()
    prev = last or GENESIS
    if isinstance(actor, User):
        actor_id, actor_name = actor.id, actor.username
    else:
        actor_id, actor_name = None, actor or "system"
    event = AuditEvent(
        created_at=utcnow(),
        actor_id=actor_id,
        actor=actor_name,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        detail=json.loads(json.dumps(detail or {}, default=str)),
        prev_hash=prev,
    )
    event.hash = _hash(prev, event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    events: int
    first_bad_id: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "events": self.events, "first_bad_id": self.first_bad_id, "reason": self.reason}


def verify_chain(session: Session) -> ChainCheck:
    """Recompute every hash in order; report the first event that does not match."""
    prev = GENESIS
    n = 0
    for event in session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars():
        n += 1
        if event.prev_hash != prev:
            return ChainCheck(False, n, event.id, "previous hash does not match: an event was removed or reordered")
        if _hash(prev, event) != event.hash:
            return ChainCheck(False, n, event.id, "content does not match its hash: the event was edited")
        prev = event.hash
    return ChainCheck(True, n)


