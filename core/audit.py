"""The audit log: append-only, hash-chained, and anchored outside the database.

Each event's hash is sha256 over the previous event's hash and the canonical
JSON of the event, so editing or deleting any row breaks the chain from there
on; `verify_chain` finds the first broken link. Appends are serialised (SQLite:
the write transaction; PostgreSQL: a transaction-scoped advisory lock), and
`prev_hash` is unique, so the chain cannot fork. Because appends are
serialised, ids are given in commit order: every committed state of the log is
a prefix of every later one.

A chain alone cannot show that its end was cut off, or that it was rewritten
from some event on with every later hash recomputed. So the head of the chain
(how many events, the last one's id and hash) is signed with the server's
Ed25519 key into **checkpoints** kept in storage (`Storage`, under
`audit/checkpoints/`), outside the database:

* after every commit that appended events, `head.json` is replaced by a
  checkpoint of the head as committed, unless the log no longer holds the
  previous head (then the old one is kept: it is the evidence);
* a permanent checkpoint `<count>.json` is written each time another
  `audit_checkpoint_every` events have accrued (SYNTHGATE_AUDIT_CHECKPOINT_EVERY,
  default 100), and for every bundle: its signed manifest carries the head at
  its approval (`head_for_manifest`), so whoever holds a bundle can check a live
  log against it.

`verify_anchored` recomputes the chain and compares it with every checkpoint:
fewer events than a checkpoint counted is a truncation, another hash at a
checkpointed position is a rewrite, and a checkpoint whose signature does not
verify is reported as such. What it cannot see: events appended after the
newest checkpoint and removed before the next one is written (the head is
re-signed on every commit, so that window is one commit wide), and an attacker
who also controls the storage and deletes checkpoints; bundles already handed
out still record their heads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Connection, Engine, event, make_url, select, text
from sqlalchemy.orm import Session

from core.models import AuditEvent, User, to_minute, utcnow

if TYPE_CHECKING:
    from core.settings import Settings
    from core.storage import Storage

__all__ = [
    "CHECKPOINT_PREFIX",
    "GENESIS",
    "HEAD_KEY",
    "ChainCheck",
    "Checkpoint",
    "checkpoint_head",
    "event_at",
    "head_for_manifest",
    "load_checkpoints",
    "record",
    "register_anchor",
    "verify_anchored",
    "verify_chain",
]

log = logging.getLogger(__name__)

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
    _arm_head_checkpoint(session)
    return event


@dataclass(frozen=True)
class ChainCheck:
    """The outcome of a check. `problem`: edited, removed, rewritten, truncated or bad_checkpoint."""

    ok: bool
    events: int
    first_bad_id: int | None = None
    reason: str | None = None
    problem: str | None = None
    checkpoints: int = 0
    latest_checkpoint: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "first_bad_id": self.first_bad_id,
            "reason": self.reason,
            "problem": self.problem,
            "checkpoints": self.checkpoints,
            "latest_checkpoint": self.latest_checkpoint,
        }


def verify_chain(session: Session, checkpoints: list[Checkpoint] | None = None) -> ChainCheck:
    """Recompute every hash in order; report the first event that does not match.

    With `checkpoints` (already signature-checked), also report a rewrite (another hash at a
    checkpointed position) and a truncation (fewer events than a checkpoint counted).
    """
    by_count: dict[int, Checkpoint] = {}
    for cp in checkpoints or ():
        by_count.setdefault(cp.count, cp)
    latest = max(by_count.values(), key=lambda c: c.count, default=None)
    anchors: dict[str, Any] = {
        "checkpoints": len(checkpoints or ()),
        "latest_checkpoint": latest.count if latest else None,
    }
    prev = GENESIS
    n = 0
    for ev in session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars():
        n += 1
        if ev.prev_hash != prev:
            return ChainCheck(
                False, n, ev.id, "previous hash does not match: an event was removed or reordered", "removed", **anchors
            )
        if _hash(prev, ev) != ev.hash:
            return ChainCheck(
                False, n, ev.id, "content does not match its hash: the event was edited", "edited", **anchors
            )
        signed = by_count.get(n)
        if signed is not None and signed.head_hash != ev.hash:
            return ChainCheck(
                False,
                n,
                ev.id,
                f"the log was REWRITTEN: its event at position {n} does not match the signed "
                f"checkpoint of {signed.created_at} ({signed.reason}); the events up to there were edited "
                "and every later hash recomputed",
                "rewritten",
                **anchors,
            )
        prev = ev.hash
    if latest is not None and latest.count > n:
        return ChainCheck(
            False,
            n,
            None,
            f"the log was TRUNCATED: it holds {n} events, but the signed checkpoint of "
            f"{latest.created_at} ({latest.reason}) counted {latest.count}: at least "
            f"{latest.count - n} events were removed from its end",
            "truncated",
            **anchors,
        )
    return ChainCheck(True, n, **anchors)


# ------------------------------------------------------------------------------------ checkpoints

CHECKPOINT_PREFIX = "audit/checkpoints/"
HEAD_KEY = CHECKPOINT_PREFIX + "head.json"
_FORMAT = "synthgate-audit-checkpoint/1"
_anchors: dict[str, Settings] = {}
_anchors_lock = threading.Lock()


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the log held `count` events, the last one `head_id` with `head_hash`."""

    count: int
    head_id: int | None
    head_hash: str
    created_at: str
    reason: str  # "head" (after a commit), "periodic" (every N events) or "bundle <job id>"
    key_fingerprint: str
    key: str | None = None  # where it is stored, once loaded

    def payload(self) -> bytes:
        body = {
            "format": _FORMAT,
            "count": self.count,
            "head_id": self.head_id,
            "head_hash": self.head_hash,
            "created_at": self.created_at,
            "reason": self.reason,
            "key_fingerprint": self.key_fingerprint,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _sign(settings: Settings, count: int, head_id: int | None, head_hash: str, reason: str) -> bytes:
    from core.bundle import key_fingerprint, public_key_pem, signing_key

    # stamped to the minute: any API user may read checkpoints, and finer times would time a job's fit
    stamp = to_minute(utcnow())
    cp = Checkpoint(count, head_id, head_hash, stamp, reason, key_fingerprint(public_key_pem(settings)))
    payload = cp.payload()
    signature = base64.b64encode(signing_key(settings).sign(payload)).decode()
    return json.dumps({"checkpoint": json.loads(payload), "signature": signature}, indent=1).encode()


def _permanent_key(count: int) -> str:
    return f"{CHECKPOINT_PREFIX}{count:012d}.json"


def _head_of(conn: Connection | Session, since: Checkpoint | None = None) -> tuple[int, int | None, str, bool]:
    """(count, last id, last hash, whether `since` is still the event at its position), in one snapshot."""
    old_id = since.head_id if since else None
    row = conn.execute(
        text(
            "SELECT (SELECT COUNT(*) FROM audit_events), e.id, e.hash, "
            "(SELECT hash FROM audit_events WHERE id = :old), "
            "(SELECT COUNT(*) FROM audit_events WHERE id <= :old) "
            "FROM audit_events e ORDER BY e.id DESC LIMIT 1"
        ),
        {"old": old_id if old_id is not None else -1},
    ).first()
    if row is None:
        return 0, None, GENESIS, since is None or since.count == 0
    count, head_id, head_hash, old_hash, old_position = row
    kept = since is None or since.count == 0 or (old_hash == since.head_hash and old_position == since.count)
    return int(count), int(head_id), str(head_hash), kept


def head_for_manifest(session: Session, settings: Settings, storage: Storage, job_id: Any = None) -> dict[str, Any]:
    """The audit head as this transaction will commit it, for a bundle's signed manifest.

    It is also written as a permanent checkpoint once the transaction commits (never if it rolls back).
    """
    session.flush()
    if session.get_bind().dialect.name == "postgresql":  # no append may slip in before this commits
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    count, head_id, head_hash, _ = _head_of(session)

    def write(_session: Session) -> None:
        try:
            storage.put_bytes(_permanent_key(count), _sign(settings, count, head_id, head_hash, f"bundle {job_id}"))
        except Exception:  # the bundle's manifest still records the head
            log.exception("could not write the audit checkpoint of bundle %s", job_id)

    event.listen(session, "after_commit", write, once=True)
    return {"count": count, "event_id": head_id, "hash": head_hash}


def checkpoint_head(settings: Settings, storage: Storage | None = None, engine: Engine | None = None) -> bool:
    """Sign the committed head into head.json (and a permanent checkpoint every N events).

    Returns False, writing nothing, when the log no longer holds the head last signed: the old
    checkpoint is kept as evidence of the truncation or rewrite.
    """
    from core.db import get_engine
    from core.storage import get_storage

    storage = storage or get_storage(settings)
    engine = engine or get_engine(settings)
    old = _read_checkpoint(storage, HEAD_KEY) if storage.exists(HEAD_KEY) else None
    # a plain read: no write lock, so this may run while another transaction holds it
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        count, head_id, head_hash, kept = _head_of(conn, old)
        conn.rollback()
    if not kept:
        log.error(
            "the audit log no longer holds the head signed at %s (%s events): it was truncated or "
            "rewritten; the old checkpoint is kept",
            old.created_at if old else "?",
            old.count if old else 0,
        )
        return False
    if old is not None and count <= old.count:
        return True
    storage.put_bytes(HEAD_KEY, _sign(settings, count, head_id, head_hash, "head"))
    every = max(1, settings.audit_checkpoint_every)
    if count // every > (old.count if old else 0) // every:
        storage.put_bytes(_permanent_key(count), _sign(settings, count, head_id, head_hash, "periodic"))
    return True


def _read_checkpoint(storage: Storage, key: str) -> Checkpoint:
    doc = json.loads(storage.get_bytes(key))
    body = doc["checkpoint"]
    return Checkpoint(
        int(body["count"]),
        body["head_id"],
        str(body["head_hash"]),
        str(body["created_at"]),
        str(body["reason"]),
        str(body["key_fingerprint"]),
        key,
    )


def load_checkpoints(storage: Storage, public_pem: str | None) -> tuple[list[Checkpoint], list[str]]:
    """Every stored checkpoint whose signature verifies with `public_pem`, and a message per one that does not."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = [k for k in storage.list_keys(CHECKPOINT_PREFIX) if k.endswith(".json")]
    if keys and public_pem is None:
        return [], [
            f"{len(keys)} checkpoints are stored but the server's signing key is missing: they cannot be checked"
        ]
    pub = serialization.load_pem_public_key(public_pem.encode()) if public_pem else None
    good: list[Checkpoint] = []
    bad: list[str] = []
    for key in keys:
        try:
            doc = json.loads(storage.get_bytes(key))
            cp = _read_checkpoint(storage, key)
            assert isinstance(pub, Ed25519PublicKey)
            pub.verify(base64.b64decode(doc["signature"], validate=True), cp.payload())
            if json.loads(cp.payload()) != {**doc["checkpoint"], "format": _FORMAT}:
                raise ValueError("fields not covered by the signature")
        except (InvalidSignature, ValueError, KeyError, TypeError, AssertionError):
            bad.append(
                f"the checkpoint {key} has an INVALID signature: it was not written by this server's key "
                "(forged or edited)"
            )
            continue
        good.append(cp)
    return good, bad


def verify_anchored(session: Session, storage: Storage, public_pem: str | None) -> ChainCheck:
    """`verify_chain` against every stored checkpoint; a checkpoint that fails its signature fails the check."""
    checkpoints, bad = load_checkpoints(storage, public_pem)
    check = verify_chain(session, checkpoints)
    if bad:
        return ChainCheck(
            False,
            check.events,
            check.first_bad_id,
            "; ".join(bad + ([check.reason] if check.reason else [])),
            "bad_checkpoint",
            check.checkpoints + len(bad),
            check.latest_checkpoint,
        )
    return check


def event_at(session: Session, position: int) -> tuple[int, AuditEvent | None]:
    """(how many events the log holds, its `position`-th event counted from 1, if it has one)."""
    total = session.execute(text("SELECT COUNT(*) FROM audit_events")).scalar_one()
    if position < 1 or position > total:
        return int(total), None
    ev = session.execute(select(AuditEvent).order_by(AuditEvent.id).offset(position - 1).limit(1)).scalar()
    return int(total), ev


def _url_key(url: str | URL) -> str:
    return make_url(url).render_as_string(hide_password=False)


def register_anchor(settings: Settings) -> None:
    """Say which settings (key, storage) sign the checkpoints of `settings.database_url` in this process."""
    with _anchors_lock:
        _anchors[_url_key(settings.database_url)] = settings


def _anchor_for(session: Session) -> Settings | None:
    bind = session.get_bind()
    url = _url_key(bind.url if isinstance(bind, Engine) else bind.engine.url)
    with _anchors_lock:
        found = _anchors.get(url)
    if found is None:
        from core.settings import get_settings

        env = get_settings()  # a worker or CLI process: its settings come from the environment
        found = env if _url_key(env.database_url) == url else None
    return found


def _arm_head_checkpoint(session: Session) -> None:
    session.info["audit_appended"] = True
    if not session.info.get("audit_listening"):
        session.info["audit_listening"] = True
        event.listen(session, "after_commit", _after_commit)


def _after_commit(session: Session) -> None:
    if not session.info.pop("audit_appended", False):
        return
    try:
        settings = _anchor_for(session)
        if settings is not None:
            checkpoint_head(settings, engine=session.get_bind())  # type: ignore[arg-type]
    except Exception:  # the commit stands; the next one signs the head
        log.exception("could not write the audit head checkpoint")
