"""Who is calling: API tokens for the CLI and scripts, session cookies for pages.

Cookie sessions may read the API (the pages poll job progress) but never change
state through it: a POST/PUT/DELETE to the API needs a bearer token, so a
cross-site form cannot act with a user's cookie.

A cookie session is valid only while its server-side row (core.auth
`start_session`) is live: logout, a password change, a role change or disabling
the account revoke it, and a copy of the cookie stops working at once.
An account that must change its initial password can do nothing else, by page
or by API, until it has.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, g, request, session
from flask_login import current_user

from core import audit
from core.auth import session_user_id, user_for_token
from core.db import session_scope, write_session
from core.errors import Unauthorized
from core.models import User
from core.settings import Settings


def settings() -> Settings:
    return current_app.config["SYNTHGATE"]


SESSION_KEY = "_sg_sid"


def current_sid() -> str | None:
    """The server-side session id kept in this request's signed cookie."""
    sid = session.get(SESSION_KEY)
    return sid if isinstance(sid, str) else None


def load_user(user_id: str) -> User | None:
    """Flask-Login's loader: the cookie's user, only while its server-side session is live."""
    with session_scope(settings()) as s:
        user = s.get(User, int(user_id)) if user_id.isdigit() else None
        max_age = dt.timedelta(hours=settings().session_max_hours)
        if user is None or not user.active or session_user_id(s, current_sid(), max_age) != user.id:
            return None
        s.expunge(user)
        return user


PASSWORD_CHANGE_FIRST = (
    "change your initial password first: open /account/password in the browser "
    "(an admin chose it; only you should know yours)"
)


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def api_user() -> User:
    """The authenticated user of an API request, or Unauthorized."""
    from webapp import ratelimit

    if "api_user" in g:
        return g.api_user
    token = _bearer()
    if token is not None:
        ratelimit.check_token_client()
        with session_scope(settings()) as s:
            try:
                user = user_for_token(s, token)
            except Unauthorized:
                record_auth_failure("invalid or revoked token")
                ratelimit.note_token_failure()
                raise
            s.expunge(user)
    elif current_user.is_authenticated and request.method in ("GET", "HEAD"):
        user = current_user._get_current_object()  # type: ignore[attr-defined]
    else:
        if current_user.is_authenticated:
            raise Unauthorized(
                "changes through the API need an API token (Authorization: Bearer ...); "
                "use the web pages' forms, or create a token"
            )
        raise Unauthorized("missing API token: send 'Authorization: Bearer <token>'")
    if user.must_change_password:
        raise Unauthorized(PASSWORD_CHANGE_FIRST)
    ratelimit.count_api_request(user.id)
    g.api_user = user
    return user


def record_auth_failure(reason: str, actor: str = "anonymous", action: str = "auth.failed") -> None:
    """Audit a failed authentication or authorisation.

    Written when the request ends (`flush_pending_audit`), in its own
    transaction: the refusal that follows must not roll it back, and the
    request may still hold the database's write lock.
    """
    g.setdefault("pending_audit", []).append(
        {
            "action": action,
            "actor": actor,
            "detail": {"reason": reason, "path": request.path, "method": request.method, "ip": request.remote_addr},
        }
    )


def flush_pending_audit(_exc: BaseException | None = None) -> None:
    pending = g.pop("pending_audit", None)
    if not pending:
        return
    with write_session(settings()) as s:
        for event in pending:
            audit.record(s, event["action"], actor=event["actor"], detail=event["detail"])
