"""The release request form."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import Session
from wtforms import SelectChoice

from core import releases
from core.db import session_scope
from core.errors import NotFound, ServiceError
from core.ledger import ledger_summary
from core.models import Dataset, Role, User
from privacy.catalogue import SUGGESTED_METHODS
from privacy.errors import PrivacyError
from webapp.auth import settings
from webapp.pages.blueprint import pages
from webapp.pages.forms import RequestForm
from webapp.pages.helpers import (
    _apply_errors,
    _budget_view,
    _dataset_or_404,
    _FieldError,
    _form_number,
    _guarantee_label,
    _parse_options,
    _require,
    _user,
    method_choices,
)
from webapp.submit import QueueUnavailable, submit_release

_REQUEST_FIELDS = {
    "epsilon": "epsilon",
    "delta": "delta",
    "rows": "rows",
    "target": "target",
    "method": "method",
    "kind": "method",
    "options": "options",
    "rebalance": "rebalance",
    "comment": "comment",
    "rho": "epsilon",
}


def _request_context(s: Session, user: User, ds: Dataset, form: RequestForm) -> dict[str, Any]:
    from privacy.schema import PublicSchema

    schema = PublicSchema.from_dict(ds.public_schema)
    methods = method_choices()
    form.method.choices = [SelectChoice(m["name"], f"{m['name']} — {_guarantee_label(m)}") for m in methods]
    default_target = schema.target
    form.target.choices = [SelectChoice("", f"schema default ({default_target or 'none'})")] + [
        SelectChoice(c) for c in schema.synthesized_columns
    ]
    form.rebalance.choices = [SelectChoice("", "no rebalancing")] + [SelectChoice(m) for m in releases.OVERSAMPLERS]
    summary = ledger_summary(s, ds)
    policy = ds.policy or {}
    return {
        "ds": {"id": ds.id, "name": ds.name, "confirmed": ds.schema_confirmed},
        "methods": methods,
        "budget": _budget_view(summary.status),
        "policy_privacy": policy.get("privacy", "dp-only"),
        "max_rows": settings().max_rows,
        "default_rows": releases.DEFAULT_ROWS,
    }


@pages.route("/datasets/<int:dataset_id>/request", methods=["GET", "POST"])
@login_required
def request_form(dataset_id: int):  # type: ignore[no-untyped-def]
    cfg = settings()
    form = RequestForm()
    with session_scope(cfg) as s:
        user = _user(s)
        ds = _dataset_or_404(s, user, dataset_id)
        _require(user, Role.analyst, Role.steward)
        ctx = _request_context(s, user, ds, form)
    if request.method == "GET":
        if not form.method.data and ctx["methods"]:
            preferred = [m["name"] for m in ctx["methods"] if m["name"] in SUGGESTED_METHODS]
            form.method.data = preferred[0] if preferred else ctx["methods"][0]["name"]
        form.delta.data = form.delta.data or "1e-9"
        return render_template("request.html", form=form, **ctx)
    if not form.validate_on_submit():
        return render_template("request.html", form=form, **ctx), 400
    try:
        body = {
            "dataset": dataset_id,
            "method": form.method.data,
            "epsilon": _form_number(form, "epsilon"),
            "delta": _form_number(form, "delta") or 0,
            "rows": form.rows.data,
            "target": form.target.data or None,
            "options": _parse_options(form),
            "rebalance": form.rebalance.data or None,
            "comment": (form.comment.data or "").strip() or None,
        }
    except _FieldError:
        return render_template("request.html", form=form, **ctx), 400
    try:
        req = releases.ReleaseRequest.parse({k: v for k, v in body.items() if v is not None})
        job_id = submit_release(cfg, current_user._get_current_object(), req)  # type: ignore[attr-defined]
    except QueueUnavailable as exc:
        # the job exists and was failed: its page says so
        job_id = exc.job_id
        flash("The job queue is unavailable: the request was cancelled and nothing was charged.", "error")
    except (ServiceError, PrivacyError) as exc:
        if exc.status >= 500 or (isinstance(exc, NotFound) and exc.field == "dataset"):
            raise
        _apply_errors(form, exc, _REQUEST_FIELDS)
        return render_template("request.html", form=form, **ctx), exc.status
    else:
        flash("Release requested: its cost is reserved in the ledger and a worker will pick it up.", "ok")
    return redirect(url_for("pages.release", job_id=job_id))
