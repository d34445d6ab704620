"""The dashboard: datasets with their budgets, and the releases each role follows."""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask_login import login_required

from core import accounts, releases
from core.db import session_scope
from core.ledger import ledger_summary
from core.models import JobStatus, Role
from webapp.auth import settings
from webapp.pages.blueprint import pages
from webapp.pages.helpers import ACTIVE_STATUSES, _budget_view, _user


@pages.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    with session_scope(settings()) as s:
        user = _user(s)
        jobs = releases.visible_jobs(s, user)
        datasets = []
        for d in releases.visible_datasets(s, user):
            view = releases.dataset_view(s, user, d)
            view["budget_view"] = _budget_view(ledger_summary(s, d).status)
            datasets.append(view)
        ctx: dict[str, Any] = {"datasets": datasets}
        if user.role == Role.steward.value:
            ctx["queue"] = [
                releases.job_view(s, user, j) for j in jobs if j.status == JobStatus.awaiting_approval.value
            ]
            ctx["active"] = [releases.job_view(s, user, j) for j in jobs if j.status in ACTIVE_STATUSES]
            ctx["recent"] = [releases.job_view(s, user, j) for j in jobs[:25]]
        elif user.role == Role.analyst.value:
            ctx["mine"] = [releases.job_view(s, user, j) for j in jobs if j.requester_id == user.id][:50]
            ctx["shared"] = [releases.job_view(s, user, j) for j in jobs if j.requester_id != user.id][:25]
        else:
            ctx["recent"] = [releases.job_view(s, user, j) for j in jobs[:25]]
            ctx["users"] = [accounts.user_view(u) for u in accounts.list_users(s, user)]
        ctx["me"] = {"id": user.id, "username": user.username, "role": user.role}
    return render_template("index.html", **ctx)
