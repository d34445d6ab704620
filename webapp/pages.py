"""Server-rendered pages for stewards and analysts."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from core import audit
from core.auth import check_password
from core.db import session_scope, write_session
from webapp.auth import settings

pages = Blueprint("pages", __name__)


@pages.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    if request.method == "POST":
        username = request.form.get("username", "")
        with write_session(settings()) as s:
            user = check_password(s, username, request.form.get("password", ""))
            if user is None:
                audit.record(s, "auth.login_failed", actor=username[:64] or "anonymous",
                             detail={"ip": request.remote_addr})
            else:
                audit.record(s, "auth.login", actor=user, detail={"ip": request.remote_addr})
                s.expunge(user)
        if user is None:
            flash("Wrong username or password.", "error")
            return render_template("login.html"), 401
        login_user(user)
        nxt = request.args.get("next") or ""
        if not nxt.startswith("/") or nxt.startswith("//"):
            nxt = url_for("pages.index")
        return redirect(nxt)
    return render_template("login.html")


@pages.post("/logout")
@login_required
def logout():  # type: ignore[no-untyped-def]
    with write_session(settings()) as s:
        audit.record(s, "auth.logout", actor=current_user.username)
    logout_user()
    return redirect(url_for("pages.login"))


@pages.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    from core import releases

    with session_scope(settings()) as s:
        user = s.merge(current_user._get_current_object(), load=False)  # type: ignore[attr-defined]
        jobs = [releases.job_view(s, user, j) for j in releases.visible_jobs(s, user)[:50]]
        datasets = [releases.dataset_view(s, user, d) for d in releases.visible_datasets(s, user)]
    return render_template("index.html", jobs=jobs, datasets=datasets)
