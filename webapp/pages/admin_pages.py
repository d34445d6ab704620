"""Admin (users and tokens), confirmations and the account page."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import accounts, confirmations
from core.db import session_scope, write_session
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from core.models import Role, User
from webapp.auth import settings
from webapp.pages.blueprint import pages
from webapp.pages.forms import PostForm, RoleForm, TokenForm, UserForm
from webapp.pages.helpers import _apply_errors, _note_denial, _require, _user


def _token_rows(s: Session, user: User) -> list[dict[str, Any]]:
    names = {u.id: u.username for u in s.execute(select(User)).scalars()}
    return [accounts.token_view(t, names.get(t.user_id)) for t in accounts.visible_tokens(s, user)]


def _render_admin(status: int = 200, **extra: Any) -> tuple[str, int]:
    with session_scope(settings()) as s:
        user = _user(s)
        _require(user, Role.admin)
        users = [accounts.user_view(u) for u in accounts.list_users(s, user)]
        tokens = _token_rows(s, user)
    return render_template(
        "admin.html",
        users=users,
        tokens=tokens,
        user_form=extra.pop("user_form", None) or UserForm(),
        token_form=extra.pop("token_form", None) or TokenForm(),
        post_form=PostForm(),
        me_id=int(current_user.id),
        **extra,
    ), status


@pages.get("/admin")
@login_required
def admin():  # type: ignore[no-untyped-def]
    return _render_admin()


@pages.post("/admin/users")
@login_required
def admin_create_user():  # type: ignore[no-untyped-def]
    form = UserForm()
    if not form.validate_on_submit():
        return _render_admin(400, user_form=form)
    try:
        with write_session(settings()) as s:
            user = _user(s)
            _require(user, Role.admin)
            created, change = accounts.create_account(
                s,
                user,
                (form.username.data or "").strip(),
                form.role.data or "",
                form.password.data or "",
                settings=settings(),
                email=form.email.data,
            )
            name, role = created.username, created.role
            wanted = change.payload["role"] if change is not None else None
    except (InvalidRequest, Conflict) as exc:
        _apply_errors(form, exc, {"username": "username", "role": "role", "password": "password", "email": "email"})
        return _render_admin(exc.status, user_form=form)
    msg = f"User {name} created with role {role}; they choose their own password at first login."
    if wanted:
        msg += f" The {wanted} role takes effect when another steward confirms it."
    flash(msg, "ok")
    return redirect(url_for("pages.admin"))


@pages.post("/admin/users/<int:user_id>/role")
@login_required
def admin_set_role(user_id: int):  # type: ignore[no-untyped-def]
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        with write_session(settings()) as s:
            user = _user(s)
            _require(user, Role.admin)
            target, change = accounts.set_role(s, user, user_id, form.role.data or "")
            name, role = target.username, target.role
    except (Conflict, InvalidRequest) as exc:
        return _render_admin(exc.status, user_error=exc.message)
    if change is not None:
        flash(
            f"{name} becomes {change.payload['role']} when another steward confirms it (on the Confirmations page).",
            "ok",
        )
    else:
        flash(f"{name} is now {role}; their sessions were ended.", "ok")
    return redirect(url_for("pages.admin"))


def _render_confirmations(status: int = 200, **extra: Any) -> tuple[str, int]:
    with session_scope(settings()) as s:
        user = _user(s)
        _require(user, Role.steward, Role.admin)
        changes = [confirmations.change_view(c) for c in confirmations.pending(s, user)]
    return render_template(
        "confirmations.html", changes=changes, post_form=PostForm(), me=current_user.username, **extra
    ), status


@pages.get("/confirmations")
@login_required
def confirmations_page():  # type: ignore[no-untyped-def]
    return _render_confirmations()


@pages.post("/confirmations/<int:change_id>/<any(confirm, reject):decision>")
@login_required
def confirmation_decide(change_id: int, decision: str):  # type: ignore[no-untyped-def]
    if not PostForm().validate_on_submit():
        abort(400)
    try:
        with write_session(settings()) as s:
            user = _user(s)
            if decision == "confirm":
                confirmations.confirm(s, user, change_id, settings=settings())
            else:
                confirmations.reject(s, user, change_id)
    except (Forbidden, Conflict, NotFound, InvalidRequest) as exc:
        _note_denial(exc.message, "change", change_id)
        return _render_confirmations(exc.status, change_error=exc.message)
    flash(f"Change {change_id} {'confirmed and applied' if decision == 'confirm' else 'rejected'}.", "ok")
    return redirect(url_for("pages.confirmations_page"))


@pages.post("/admin/users/<int:user_id>/<any(disable, enable):change>")
@login_required
def admin_set_active(user_id: int, change: str):  # type: ignore[no-untyped-def]
    if not PostForm().validate_on_submit():
        abort(400)
    try:
        with write_session(settings()) as s:
            user = _user(s)
            _require(user, Role.admin)
            target = accounts.set_active(s, user, user_id, change == "enable")
            name = target.username
    except Conflict as exc:
        return _render_admin(exc.status, user_error=exc.message)
    flash(f"User {name} {'enabled' if change == 'enable' else 'disabled'}.", "ok")
    return redirect(url_for("pages.admin"))


def _render_account(status: int = 200, **extra: Any) -> tuple[str, int]:
    with session_scope(settings()) as s:
        user = _user(s)
        tokens = [t for t in _token_rows(s, user) if t["owner"] == user.username]
    return render_template(
        "account.html",
        tokens=tokens,
        post_form=PostForm(),
        token_form=extra.pop("token_form", None) or TokenForm(),
        **extra,
    ), status


@pages.get("/account")
@login_required
def account():  # type: ignore[no-untyped-def]
    return _render_account()


@pages.post("/tokens")
@login_required
def token_create():  # type: ignore[no-untyped-def]
    """Create an API token of the logged-in user and show it once (never stored in the session)."""
    form = TokenForm()
    back = request.form.get("back") == "admin" and current_user.role == Role.admin.value
    render = _render_admin if back else _render_account
    if not form.validate_on_submit():
        return render(400, token_form=form)
    with write_session(settings()) as s:
        user = _user(s)
        token, row = accounts.issue_token(s, user, form.label.data)
        prefix = row.prefix
    return render(201, new_token=token, new_token_prefix=prefix, token_form=TokenForm(formdata=None))


@pages.post("/tokens/<int:token_id>/revoke")
@login_required
def token_revoke(token_id: int):  # type: ignore[no-untyped-def]
    if not PostForm().validate_on_submit():
        abort(400)
    try:
        with write_session(settings()) as s:
            accounts.revoke_token_as(s, _user(s), token_id)
    except NotFound:
        _note_denial(f"token {token_id} not visible", "token", token_id)
        raise
    flash(f"Token {token_id} revoked: it no longer authenticates.", "ok")
    back = request.form.get("back") == "admin" and current_user.role == Role.admin.value
    return redirect(url_for("pages.admin" if back else "pages.account"))
