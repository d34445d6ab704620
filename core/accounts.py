"""Accounts: users and API tokens, as the admin page and the account page manage them.

Every function takes the acting user and checks its rights on the server.
Tokens are created only for the acting user (shown once): an admin who could
mint a token for someone else could act as that steward and get around the
four-eyes rule. An admin may list and revoke every token; others only their own.
Another user's token is reported as not found, never as forbidden.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.auth import create_token, create_user
from core.errors import Conflict, Forbidden, NotFound
from core.models import ApiToken, Role, User, utcnow

__all__ = [
    "list_users",
    "create_account",
    "set_active",
    "visible_tokens",
    "issue_token",
    "revoke_token_as",
    "user_view",
    "token_view",
]


def _require_admin(actor: User, action: str) -> None:
    if actor.role != Role.admin.value:
        raise Forbidden(f"{action} needs the admin role; you are {actor.role}")


def list_users(session: Session, actor: User) -> list[User]:
    """Every user, for the admin page."""
    _require_admin(actor, "listing users")
    return list(session.execute(select(User).order_by(User.id)).scalars())


def create_account(session: Session, actor: User, username: str, role: str, password: str) -> User:
    """A new user with a role and an initial password (scrypt-hashed). Admin only."""
    _require_admin(actor, "creating users")
    user = create_user(session, username, role, password)
    audit.record(session, "user.create", actor=actor, object_type="user", object_id=user.id,
                 detail={"username": user.username, "role": user.role})
    return user


def set_active(session: Session, actor: User, user_id: int, active: bool) -> User:
    """Disable or re-enable a user. A disabled user's sessions and tokens stop working at once."""
    _require_admin(actor, "disabling users")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}", field="user")
    if user.id == actor.id and not active:
        raise Conflict("you cannot disable your own account; ask another admin", field="user")
    if bool(user.active) != active:
        user.active = active
        audit.record(session, "user.enable" if active else "user.disable", actor=actor, object_type="user",
                     object_id=user.id, detail={"username": user.username})
    return user


def visible_tokens(session: Session, actor: User) -> list[ApiToken]:
    """All tokens for an admin; one's own tokens for everyone else (newest first)."""
    q = select(ApiToken).order_by(ApiToken.id.desc())
    if actor.role != Role.admin.value:
        q = q.where(ApiToken.user_id == actor.id)
    return list(session.execute(q).scalars())


def issue_token(session: Session, actor: User, label: str | None = None) -> tuple[str, ApiToken]:
    """A new API token of the acting user: (the plain token, shown once; its row)."""
    label = (label or "").strip()[:128] or None
    token = create_token(session, actor, label=label)
    row = session.execute(
        select(ApiToken).where(ApiToken.user_id == actor.id).order_by(ApiToken.id.desc()).limit(1)
    ).scalar_one()
    audit.record(session, "token.create", actor=actor, object_type="token", object_id=row.id,
                 detail={"label": label, "prefix": row.prefix})
    return token, row


def revoke_token_as(session: Session, actor: User, token_id: int) -> ApiToken:
    """Revoke a token the actor owns (any token for an admin); others' tokens are not found."""
    row = session.get(ApiToken, token_id)
    if row is None or (actor.role != Role.admin.value and row.user_id != actor.id):
        raise NotFound(f"no API token {token_id}", field="token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, "token.revoke", actor=actor, object_type="token", object_id=row.id,
                     detail={"owner_id": row.user_id, "prefix": row.prefix})
    return row


def user_view(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "role": user.role, "active": bool(user.active),
            "created_at": user.created_at.isoformat(timespec="seconds") if user.created_at else None}


def token_view(row: ApiToken, owner: str | None = None) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    return {"id": row.id, "owner": owner, "prefix": row.prefix, "label": row.label,
            "created_at": iso(row.created_at), "last_used_at": iso(row.last_used_at),
            "revoked_at": iso(row.revoked_at), "active": row.revoked_at is None}
