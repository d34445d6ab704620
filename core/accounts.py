"""Accounts: users and API tokens, as the admin page and the account page manage them.

Every function takes the acting user and checks its rights on the server.
Tokens are created only for the acting user (shown once): an admin who could
mint a token for someone else could act as that steward and get around the
four-eyes rule. An admin may list and revoke every token; others only their own.
Another user's token is reported as not found, never as forbidden.

Four eyes on identities: an account an admin creates must change its password
at first login, and a new steward or admin (or a role change to one) takes
effect only when a second steward confirms it (core/confirmations.py).
Ending an account's sessions on the server goes with every change that could
matter to them: a disabled account, a role change, a new password.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, confirmations
from core.auth import create_token_row, create_user, end_all_sessions, set_password
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from core.models import ApiToken, PendingChange, Role, User, utcnow
from core.notifications import check_email
from core.settings import Settings, get_settings

__all__ = [
    "change_password",
    "create_account",
    "issue_token",
    "list_users",
    "revoke_token_as",
    "set_active",
    "set_role",
    "token_view",
    "user_view",
    "visible_tokens",
]


def _require_admin(actor: User, action: str) -> None:
    if actor.role != Role.admin.value:
        raise Forbidden(f"{action} needs the admin role; you are {actor.role}")


def list_users(session: Session, actor: User) -> list[User]:
    """Every user, for the admin page."""
    _require_admin(actor, "listing users")
    return list(session.execute(select(User).order_by(User.id)).scalars())


def _policy(settings: Settings | None) -> dict[str, int]:
    settings = settings or get_settings()
    return {"min_length": settings.password_min_length, "min_score": settings.password_min_score}


def _check_role(role: str) -> str:
    try:
        return Role(role).value
    except ValueError:
        raise InvalidRequest(f"role must be one of steward, analyst, admin; got {role!r}", field="role") from None


def create_account(
    session: Session,
    actor: User,
    username: str,
    role: str,
    password: str,
    settings: Settings | None = None,
    email: str | None = None,
) -> tuple[User, PendingChange | None]:
    """A new user with an initial password that must be changed at first login. Admin only.

    A steward or admin account starts as an analyst (no grants: it sees nothing) and gets its role
    when a second steward confirms it. Returns the user and that pending change, if any.
    """
    _require_admin(actor, "creating users")
    role = _check_role(role)
    start_role = Role.analyst.value if role in confirmations.ELEVATED_ROLES else role
    user = create_user(session, username, start_role, password, must_change_password=True, policy=_policy(settings))
    user.email = check_email(email)
    audit.record(
        session,
        "user.create",
        actor=actor,
        object_type="user",
        object_id=user.id,
        detail={"username": user.username, "role": user.role, "requested_role": role, "must_change_password": True},
    )
    change = None
    if role != start_role:
        change = confirmations.request_change(
            session,
            actor,
            confirmations.ROLE,
            "user",
            user.id,
            {"role": role, "username": user.username, "before": start_role},
        )
    return user, change


def set_role(session: Session, actor: User, user_id: int, role: str) -> tuple[User, PendingChange | None]:
    """Change a user's role. Admin only. Lowering to analyst applies at once (and ends the user's
    sessions); a change to steward or admin waits for a second steward's confirmation."""
    _require_admin(actor, "changing roles")
    role = _check_role(role)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}", field="user")
    if user.id == actor.id:
        raise Conflict("you cannot change your own role; ask another admin", field="user")
    if user.role == role:
        return user, None
    if role in confirmations.ELEVATED_ROLES:
        change = confirmations.request_change(
            session,
            actor,
            confirmations.ROLE,
            "user",
            user.id,
            {"role": role, "username": user.username, "before": user.role},
        )
        return user, change
    for old in confirmations.pending_for(session, "user", user.id):  # a demotion withdraws a pending elevation
        confirmations.reject(session, actor, old.id, "superseded by a role change to " + role)
    before = user.role
    user.role = role
    ended = end_all_sessions(session, user.id, "role change")
    audit.record(
        session,
        "user.role_change",
        actor=actor,
        object_type="user",
        object_id=user.id,
        detail={"username": user.username, "before": before, "after": role, "sessions_ended": ended},
    )
    return user, None


def change_password(
    session: Session, user: User, current: str, new: str, keep_sid: str | None = None, settings: Settings | None = None
) -> int:
    """The user's own password change: needs the current password; ends every other session."""
    from werkzeug.security import check_password_hash

    if not user.password_hash or not check_password_hash(user.password_hash, current or ""):
        raise Unauthorized("the current password is wrong", field="current_password")
    if current == new:
        raise InvalidRequest("choose a new password different from the current one", field="new_password")
    try:
        set_password(user, new, **_policy(settings))
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message, field="new_password") from None
    forced = bool(user.must_change_password)
    user.must_change_password = False
    ended = end_all_sessions(session, user.id, "password change", keep_sid=keep_sid)
    audit.record(
        session,
        "user.password_change",
        actor=user,
        object_type="user",
        object_id=user.id,
        detail={"forced": forced, "sessions_ended": ended},
    )
    return ended


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
        ended = 0 if active else end_all_sessions(session, user.id, "account disabled")
        audit.record(
            session,
            "user.enable" if active else "user.disable",
            actor=actor,
            object_type="user",
            object_id=user.id,
            detail={"username": user.username, "sessions_ended": ended},
        )
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
    token, row = create_token_row(session, actor, label=label)
    audit.record(
        session,
        "token.create",
        actor=actor,
        object_type="token",
        object_id=row.id,
        detail={"label": label, "prefix": row.prefix},
    )
    return token, row


def revoke_token_as(session: Session, actor: User, token_id: int) -> ApiToken:
    """Revoke a token the actor owns (any token for an admin); others' tokens are not found."""
    row = session.get(ApiToken, token_id)
    if row is None or (actor.role != Role.admin.value and row.user_id != actor.id):
        raise NotFound(f"no API token {token_id}", field="token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            session,
            "token.revoke",
            actor=actor,
            object_type="token",
            object_id=row.id,
            detail={"owner_id": row.user_id, "prefix": row.prefix},
        )
    return row


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "active": bool(user.active),
        "must_change_password": bool(user.must_change_password),
        "email": user.email,
        "created_at": user.created_at.isoformat(timespec="seconds") if user.created_at else None,
    }


def token_view(row: ApiToken, owner: str | None = None) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    return {
        "id": row.id,
        "owner": owner,
        "prefix": row.prefix,
        "label": row.label,
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "revoked_at": iso(row.revoked_at),
        "active": row.revoked_at is None,
    }
