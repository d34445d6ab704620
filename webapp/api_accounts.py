"""The JSON API for accounts and for changes awaiting a second steward (bearer-token auth).

Admins create users and change roles; a steward or admin role takes effect when
another steward confirms it under /confirmations, as does a budget raise above
the ceiling (core/confirmations.py). 202 means "accepted, not yet in force".
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from core import accounts, confirmations
from core.db import session_scope, write_session
from core.errors import InvalidRequest
from core.models import User
from webapp.api import _json
from webapp.auth import api_user, settings

api_accounts = Blueprint("api_accounts", __name__, url_prefix="/api/v1")


def _attach(user: User, s: Any) -> User:
    return s.merge(user, load=False)


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string", field=name)
    return value


@api_accounts.get("/users")
def list_users() -> Response:
    user = api_user()
    with session_scope(settings()) as s:
        return jsonify({"users": [accounts.user_view(u) for u in accounts.list_users(s, _attach(user, s))]})


@api_accounts.post("/users")
def create_user() -> tuple[Response, int]:
    user = api_user()
    body = _json()
    with write_session(settings()) as s:
        created, change = accounts.create_account(
            s,
            _attach(user, s),
            _text(body, "username").strip(),
            _text(body, "role"),
            _text(body, "password"),
            settings=settings(),
            email=body.get("email"),
        )
        out: dict[str, Any] = {"user": accounts.user_view(created)}
        if change is not None:
            out["awaiting_confirmation"] = confirmations.change_view(change)
        return jsonify(out), 201


@api_accounts.put("/users/<int:user_id>/role")
def set_role(user_id: int) -> tuple[Response, int]:
    user = api_user()
    body = _json()
    with write_session(settings()) as s:
        target, change = accounts.set_role(s, _attach(user, s), user_id, _text(body, "role"))
        out: dict[str, Any] = {"user": accounts.user_view(target)}
        if change is not None:
            out["awaiting_confirmation"] = confirmations.change_view(change)
            return jsonify(out), 202
        return jsonify(out), 200


def _set_active(user_id: int, active: bool) -> Response:
    user = api_user()
    with write_session(settings()) as s:
        target = accounts.set_active(s, _attach(user, s), user_id, active)
        return jsonify({"user": accounts.user_view(target)})


@api_accounts.post("/users/<int:user_id>/disable")
def disable_user(user_id: int) -> Response:
    return _set_active(user_id, False)


@api_accounts.post("/users/<int:user_id>/enable")
def enable_user(user_id: int) -> Response:
    return _set_active(user_id, True)


@api_accounts.get("/confirmations")
def list_confirmations() -> Response:
    user = api_user()
    with session_scope(settings()) as s:
        changes = confirmations.pending(s, _attach(user, s))
        return jsonify({"confirmations": [confirmations.change_view(c) for c in changes]})


def _decide(change_id: int, confirm: bool) -> Response:
    user = api_user()
    body = _json()
    comment = _text(body, "comment") or None
    with write_session(settings()) as s:
        actor = _attach(user, s)
        if confirm:
            change = confirmations.confirm(s, actor, change_id, comment, settings=settings())
        else:
            change = confirmations.reject(s, actor, change_id, comment)
        return jsonify({"change": confirmations.change_view(change)})


@api_accounts.post("/confirmations/<int:change_id>/confirm")
def confirm_change(change_id: int) -> Response:
    return _decide(change_id, True)


@api_accounts.post("/confirmations/<int:change_id>/reject")
def reject_change(change_id: int) -> Response:
    return _decide(change_id, False)
