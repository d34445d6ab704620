"""Users, passwords, browser sessions and API tokens.

Passwords use Werkzeug's scrypt hash (slow by design) and must pass
`check_password_policy`: a minimum length, not one of the 30,000 most common
passwords (zxcvbn's list, shipped with the package: nothing is downloaded), not
built from the username, and a minimum zxcvbn strength score. No composition
rules. API tokens and browser session ids are random, shown once, stored only
as their SHA-256, and revocable on the server.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from core.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from core.models import ApiToken, Role, User, UserSession, utcnow

__all__ = [
    "TOKEN_PREFIX",
    "check_password",
    "check_password_policy",
    "create_token",
    "create_user",
    "end_all_sessions",
    "end_session",
    "hash_token",
    "revoke_token",
    "session_user_id",
    "set_password",
    "start_session",
    "user_for_token",
]

TOKEN_PREFIX = "sg_"
MAX_PASSWORD_LENGTH = 256
_SCORED_PREFIX = 100  # zxcvbn's matching grows quickly with length; a longer password is long enough anyway
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


@functools.cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password_policy(password: str, username: str = "", *, min_length: int = 8, min_score: int = 2) -> None:
    """Refuse a weak password with a message that says what to change (InvalidRequest on field 'password')."""
    password = password or ""
    if len(password) < min_length:
        raise InvalidRequest(f"a password needs at least {min_length} characters", field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidRequest(f"a password may have at most {MAX_PASSWORD_LENGTH} characters", field="password")
    folded = password.strip().lower()
    if folded in _common_passwords():
        raise InvalidRequest(
            "this password is on the list of the most common (breached) passwords; "
            "choose a longer phrase of unrelated words",
            field="password",
        )
    name = (username or "").strip().lower()
    if name and (name in folded or folded in name):
        raise InvalidRequest("a password must not contain the username", field="password")
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:_SCORED_PREFIX], user_inputs=[u for u in (name, "synthgate") if u])
    if result["score"] < min_score:
        hint = (result.get("feedback") or {}).get("warning") or "it is easy to guess"
        raise InvalidRequest(
            f"this password is too weak ({hint.rstrip('.')}); use a longer phrase of unrelated words", field="password"
        )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session,
    username: str,
    role: str,
    password: str | None = None,
    *,
    must_change_password: bool = False,
    policy: dict[str, int] | None = None,
) -> User:
    """A user with `role` at once: the server-side bootstrap path (first accounts, demo, tests).

    Accounts made through the web or API go through `core.accounts.create_account`, which forces a
    password change at first login and makes an elevated role wait for a second steward.
    """
    username = (username or "").strip()
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-@" for c in username):
        raise InvalidRequest("username must be 1-64 letters, digits or . _ - @", field="username")
    try:
        Role(role)
    except ValueError:
        raise InvalidRequest(f"role must be one of steward, analyst, admin; got {role!r}", field="role") from None
    if session.execute(select(User).where(User.username == username)).scalar_one_or_none():
        raise Conflict(f"user '{username}' already exists", field="username")
    user = User(username=username, role=role, must_change_password=must_change_password)
    if password is not None:
        set_password(user, password, **(policy or {}))
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str, *, min_length: int = 8, min_score: int = 2) -> None:
    check_password_policy(password, user.username or "", min_length=min_length, min_score=min_score)
    user.password_hash = generate_password_hash(password, method="scrypt")


def check_password(session: Session, username: str, password: str) -> User | None:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password or "")  # same time whether or not the user exists
        return None
    if not user.active or not check_password_hash(user.password_hash, password or ""):
        return None
    return user


def create_token_row(session: Session, user: User, label: str | None = None) -> tuple[str, ApiToken]:
    """A new API token for `user`: the plain token (returned once, never stored) and its row."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:10], label=label)
    session.add(row)
    session.flush()
    return token, row


def create_token(session: Session, user: User, label: str | None = None) -> str:
    """A new API token for `user`. The plain token is returned once and never stored."""
    return create_token_row(session, user, label)[0]


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


# ------------------------------------------------------------------------------------------------
# browser sessions
# ------------------------------------------------------------------------------------------------


def start_session(session: Session, user: User, ip: str | None = None) -> str:
    """A new server-side session of `user`; returns the random id to keep in the signed cookie."""
    sid = secrets.token_urlsafe(32)
    session.add(UserSession(user_id=user.id, sid_hash=hash_token(sid), ip=(ip or "")[:64] or None))
    session.flush()
    return sid


def session_user_id(session: Session, sid: str | None, max_age: dt.timedelta | None = None) -> int | None:
    """The user id of a live session, or None when it is unknown, revoked or older than `max_age`."""
    if not sid:
        return None
    row = session.execute(select(UserSession).where(UserSession.sid_hash == hash_token(sid))).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    if max_age is not None and row.created_at < utcnow() - max_age:
        return None
    return row.user_id


def end_session(session: Session, sid: str | None, reason: str = "logout") -> None:
    if not sid:
        return
    row = session.execute(select(UserSession).where(UserSession.sid_hash == hash_token(sid))).scalar_one_or_none()
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        row.revoked_reason = reason


def end_all_sessions(session: Session, user_id: int, reason: str, keep_sid: str | None = None) -> int:
    """Revoke every live session of a user (but `keep_sid`); returns how many were ended."""
    keep = hash_token(keep_sid) if keep_sid else None
    rows = session.execute(
        select(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
    ).scalars()
    n = 0
    for row in rows:
        if row.sid_hash != keep:
            row.revoked_at = utcnow()
            row.revoked_reason = reason
            n += 1
    return n
