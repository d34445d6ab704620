"""Login, logout and the password change (first, for an account with an initial password)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from core import accounts, audit
from core.auth import check_password, end_session, start_session
from core.db import write_session
from core.errors import InvalidRequest, ServiceError
from webapp import ratelimit
from webapp.auth import SESSION_KEY, current_sid, settings
from webapp.pages.blueprint import pages
from webapp.pages.forms import LoginForm, PasswordChangeForm
from webapp.pages.helpers import _apply_errors, _user


def safe_next(raw: str | None) -> str | None:
    """A same-origin relative path to go to after login, or None.

    Browsers drop tabs and line breaks inside URLs and read a backslash as '/', so
    '/%09/evil.example' would be '//evil.example': those are removed or turned
    first, then only a path on this host is accepted. CR/LF is refused outright.
    """
    if not raw:
        return None
    if "\r" in raw or "\n" in raw:
        raise InvalidRequest("the 'next' address must not contain line breaks; remove them", field="next")
    cleaned = "".join(ch for ch in raw if ch.isprintable() and not ch.isspace()).replace("\\", "/")
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc or not cleaned.startswith("/") or cleaned.startswith("//"):
        return None
    return cleaned


def _login_refused(form: LoginForm, exc: ratelimit.TooManyAttempts):  # type: ignore[no-untyped-def]
    form.form_errors.append(exc.message[:1].upper() + exc.message[1:] + ".")
    resp = make_response(render_template("login.html", form=form), 429)
    resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


@pages.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    form = LoginForm()
    nxt = safe_next(request.args.get("next"))
    if form.validate_on_submit():
        username = form.username.data or ""
        try:
            ratelimit.check_login(username)
        except ratelimit.TooManyAttempts as exc:
            with write_session(settings()) as s:
                audit.record(
                    s,
                    "auth.login_throttled",
                    actor=username[:64] or "anonymous",
                    detail={"ip": request.remote_addr, "retry_after": exc.retry_after},
                )
            return _login_refused(form, exc)
        with write_session(settings()) as s:
            user = check_password(s, username, form.password.data or "")
            if user is None:
                audit.record(
                    s, "auth.login_failed", actor=username[:64] or "anonymous", detail={"ip": request.remote_addr}
                )
            else:
                sid = start_session(s, user, request.remote_addr)
                audit.record(s, "auth.login", actor=user, detail={"ip": request.remote_addr})
                s.expunge(user)
        if user is None:
            ratelimit.note_login_failure(username)
            form.form_errors.append("Wrong username or password (or the account is disabled).")
            return render_template("login.html", form=form), 401
        session.clear()  # nothing from before the login survives it
        login_user(user)
        session[SESSION_KEY] = sid
        if user.must_change_password:
            return redirect(url_for("pages.password"))
        return redirect(nxt or url_for("pages.index"))
    return render_template("login.html", form=form), 400 if form.errors else 200


@pages.post("/logout")
@login_required
def logout():  # type: ignore[no-untyped-def]
    with write_session(settings()) as s:
        end_session(s, current_sid(), "logout")
        audit.record(s, "auth.logout", actor=current_user.username)
    logout_user()
    session.clear()
    return redirect(url_for("pages.login"))


@pages.before_request
def _initial_password_first():  # type: ignore[no-untyped-def]
    """An account created with an admin's password may only change it (or log out)."""
    if (
        current_user.is_authenticated
        and current_user.must_change_password
        and request.endpoint not in ("pages.password", "pages.logout", "static")
    ):
        return redirect(url_for("pages.password"))
    return None


@pages.route("/account/password", methods=["GET", "POST"])
@login_required
def password():  # type: ignore[no-untyped-def]
    """Change one's own password; every other session of the account ends."""
    form = PasswordChangeForm()
    forced = bool(current_user.must_change_password)
    if form.validate_on_submit():
        try:
            with write_session(settings()) as s:
                ended = accounts.change_password(
                    s,
                    _user(s),
                    form.current_password.data or "",
                    form.new_password.data or "",
                    keep_sid=current_sid(),
                    settings=settings(),
                )
        except (InvalidRequest, ServiceError) as exc:
            _apply_errors(
                form,
                exc,
                {"current_password": "current_password", "new_password": "new_password", "password": "new_password"},
            )
            return render_template("password.html", form=form, forced=forced), exc.status
        flash("Password changed." + (f" {ended} other session(s) ended." if ended else ""), "ok")
        return redirect(url_for("pages.index"))
    return render_template("password.html", form=form, forced=forced), 400 if form.errors else 200
