"""The release request form."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import Session
from wtforms import SelectChoice

from core import releases
from core.db import session_scope
from core.errors import Conflict, NotFound, ServiceError
from core.ledger import ledger_summary
from core.models import Dataset, Role, User
from privacy.advice import advice_view, allowed_by_policy
from privacy.errors import PrivacyError
from privacy.policy import DatasetPolicy
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


def _confirmed(ds: Dataset) -> None:
    # a proposed schema was read from the raw rows: no form is built on it before the steward confirms it
    if not ds.schema_confirmed:
        raise Conflict(
            f"dataset '{ds.name}' has a proposed schema the steward has not confirmed yet; "
            "releases open once it is confirmed",
            field="dataset",
        )


def _request_context(s: Session, user: User, ds: Dataset, form: RequestForm) -> dict[str, Any]:
    """What the form shows: public facts only. The rows default to the row count the steward declared
    public, else to the service's default; the exact row count of the table (steward only) is never read."""
    from privacy.schema import PublicSchema

    # a proposed schema was read from the raw rows: until the steward confirms it, the form shows nothing of it
    schema = PublicSchema.from_dict(ds.public_schema) if ds.schema_confirmed else None
    policy = DatasetPolicy.from_dict(ds.policy)
    installed = method_choices()
    # methods the dataset's policy refuses are not offered (a request naming one is still refused)
    methods = [m for m in installed if allowed_by_policy(m["guarantee"], policy)]
    form.method.choices = [SelectChoice(m["name"], f"{m['name']} — {_guarantee_label(m)}") for m in methods]
    default_target = schema.target if schema is not None else None
    form.target.choices = [SelectChoice("", f"schema default ({default_target or 'none'})")] + [
        SelectChoice(c) for c in (schema.synthesized_columns if schema is not None else [])
    ]
    form.rebalance.choices = [SelectChoice("", "no rebalancing")] + [SelectChoice(m) for m in releases.OVERSAMPLERS]
    summary = ledger_summary(s, ds)
    max_rows = settings().max_rows
    public_rows = policy.public_row_count
    default_rows = min(public_rows, max_rows) if public_rows is not None else releases.DEFAULT_ROWS
    return {
        "ds": {"id": ds.id, "name": ds.name, "confirmed": ds.schema_confirmed},
        "methods": methods,
        "refused_methods": [m["name"] for m in installed if m not in methods],
        "advice": None
        if schema is None
        else advice_view(schema, policy, form.epsilon.data, available=[m["name"] for m in methods]),
        "budget": _budget_view(summary.status),
        "policy_privacy": policy.privacy,
        "max_rows": max_rows,
        "default_rows": default_rows,
        "public_rows": public_rows,
    }


def estimate_detail(est: dict[str, Any] | None) -> str:
    """The line under the estimate: fit and report, the size it is made for, the limit, what fits."""
    if not est:
        return ""
    limit = est.get("limit_minutes")
    text = (
        f"fit {est['fit_seconds']:g} s + report {est['report_seconds']:g} s (CPU), for {est['rows']:,} rows x "
        f"{est['columns']} columns; " + (f"the dataset's limit is {limit:g} min" if limit is not None else "no limit")
    )
    if est.get("over_limit"):
        text += ". Over the limit: it would be refused"
        if est.get("suggestions"):
            text += "; under it with " + ", ".join(est["suggestions"])
    return text


def _form_estimate(dataset_id: int, form: RequestForm) -> dict[str, Any] | None:
    """The time estimate of what the form holds (core/estimates.py: public facts only); None if it has none."""
    from core.estimates import request_estimate

    try:
        options = _parse_options(form)
    except _FieldError:
        return None
    query = {
        "method": form.method.data,
        "epsilon": form.epsilon.data,
        "delta": form.delta.data,
        "rows": form.rows.data,
        "options": options,
    }
    try:
        with session_scope(settings()) as s:
            user = _user(s)
            ds = _dataset_or_404(s, user, dataset_id)
            if not ds.schema_confirmed or not form.method.data:
                return None
            est = request_estimate(s, ds, query)
    except (ServiceError, PrivacyError):
        return None
    est["detail"] = estimate_detail(est)
    return est


@pages.get("/datasets/<int:dataset_id>/request/advice")
@login_required
def request_advice(dataset_id: int) -> Response:
    """The method advice for `?epsilon=`, as JSON, for the request form's script (public facts only)."""
    from privacy.schema import PublicSchema

    with session_scope(settings()) as s:
        user = _user(s)
        ds = _dataset_or_404(s, user, dataset_id)
        _require(user, Role.analyst, Role.steward)
        _confirmed(ds)
        policy = DatasetPolicy.from_dict(ds.policy)
        schema = PublicSchema.from_dict(ds.public_schema)
    available = [m["name"] for m in method_choices() if allowed_by_policy(m["guarantee"], policy)]
    resp = jsonify({"advice": advice_view(schema, policy, request.args.get("epsilon"), available=available)})
    resp.headers["Cache-Control"] = "no-store"
    return resp


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
        names = [m["name"] for m in ctx["methods"]]
        if not form.method.data and names:
            advised = (ctx["advice"] or {}).get("method")
            form.method.data = advised if advised in names else names[0]
        form.delta.data = form.delta.data or "1e-9"
        if form.rows.data is None:
            form.rows.data = ctx["default_rows"]
        return render_template("request.html", form=form, estimate=_form_estimate(dataset_id, form), **ctx)
    ctx["estimate"] = _form_estimate(dataset_id, form)
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
