"""Users, passwords and API tokens.

Passwords use Werkzeug's scrypt hash (slow by design). API tokens are random,
shown once, stored only as their SHA-256, and revocable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from core.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from core.models import ApiToken, Role, User, utcnow

__all__ = ["create_user", "create_token", "user_for_token", "revoke_token", "check_password",
           "set_password", "hash_token", "TOKEN_PREFIX"]

TOKEN_PREFIX = "sg_"
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, username: str, role: str, password: str | None = None) -> User:
    username = (username or "").strip()
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-@" for c in username):
        raise InvalidRequest("username must be 1-64 letters, digits or . _ - @", field="username")
    try:
        Role(role)
    except ValueError:
        raise InvalidRequest(f"role must be one of steward, analyst, admin; got {role!r}", field="role") from None
    if session.execute(select(User).where(User.username == username)).scalar_one_or_none():
        raise Conflict(f"user '{username}' already exists", field="username")
    user = User(username=username, role=role)
    if password is not None:
        set_password(user, password)
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    if len(password or "") < 8:
        raise InvalidRequest("a password needs at least 8 characters", field="password")
    user.password_hash = generate_password_hash(password, method="scrypt")


def check_password(session: Session, username: str, password: str) -> User | None:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password or "")  # same time whether or not the user exists
        return None
    if not user.active or not check_password_hash(user.password_hash, password or ""):
        return None
    return user


def create_token(session: Session, user: User, label: str | None = None) -> str:
    """A new API token for `user`. The plain token is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:10], label=label))
    session.flush()
    return token


def user_for_token(session: Session, token: str | None) -> User:
    if not token:
        raise Unauthorized("missing API token: send 'Authorization: Bearer <token>'")
    row = session.execute(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, hash_token(token)):
        raise Unauthorized("invalid API token: check SYNTHGATE_TOKEN or ask an admin for a new one")
    if row.revoked_at is not None:
        raise Unauthorized("this API token was revoked: ask an admin for a new one")
    user = row.user
    if not user.active:
        raise Unauthorized("this account is disabled")
    row.last_used_at = utcnow()
    return user


def revoke_token(session: Session, token_id: int, owner: User | None = None) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or (owner is not None and row.user_id != owner.id):
        raise NotFound(f"no API token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row
