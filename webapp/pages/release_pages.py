"""Releases: the release page, its reports, approve, re-run, reject, cancel and the bundle download."""

from __future__ import annotations

import logging
from typing import Any

import yaml
from flask import Response, current_app, flash, g, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from itsdangerous import BadSignature, SignatureExpired
from sqlalchemy.orm import Session

from core import candidates, release_public, releases
from core.db import session_scope, write_session
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from core.models import JobStatus, ReleaseJob, Role, User
from core.notifications import APPROVED, REJECTED
from core.notifications import after_commit as notify_after_commit
from core.storage import get_storage
from core.views import fit_for_purpose
from privacy.errors import PrivacyError
from webapp.auth import settings
from webapp.pages.blueprint import pages
from webapp.pages.forms import ApproveForm, CancelForm, RejectForm, RerunForm
from webapp.pages.helpers import (
    ACTIVE_STATUSES,
    REPORT_CSP,
    STAFF,
    _apply_errors,
    _bundle_statement,
    _download_serializer,
    _job_or_404,
    _note_denial,
    _storage_text,
    _user,
    download_link,
)

log = logging.getLogger(__name__)


def _release_context(s: Session, user: User, job: ReleaseJob) -> dict[str, Any]:
    view = releases.job_view(s, user, job)
    staff = user.role in STAFF
    is_requester = job.requester_id == user.id
    awaiting = job.status == JobStatus.awaiting_approval.value
    has_report = bool(job.artifacts)
    can_dl = releases.can_download(user, job)
    # before the decision, the requester sees the public part only (core/release_public.py)
    preview = None if staff else release_public.preview(s, get_storage(settings()), job)
    report_visible = has_report and (staff or can_dl or bool(preview and preview["report"]))
    if staff and job.status != JobStatus.approved.value:
        statement, statement_kind = _storage_text((job.artifacts or {}).get("privacy_draft.md")), "draft"
    elif can_dl:
        statement, statement_kind = _bundle_statement(job.bundle_key), "final"
    elif preview is not None:
        statement, statement_kind = preview["statement"], "preview"
    else:
        statement, statement_kind = None, None
    gate = job.gate if staff else None
    return {
        "job": view,
        "staff": staff,
        "is_requester": is_requester,
        "can_decide": user.role == Role.steward.value and awaiting,
        "four_eyes": user.role == Role.steward.value and awaiting and is_requester,
        "gate": gate,
        "gate_fails": bool(gate and gate.get("overall") == "fail"),
        "summary": job.summary if staff else None,
        "report_url": url_for("pages.release_report", job_id=job.id) if report_visible else None,
        "report_kind": ("internal" if staff or job.include_internal else "public") if report_visible else None,
        "statement": statement,
        "statement_kind": statement_kind,
        "preview": preview,
        "fit": view.get("fit_for_purpose"),
        "download_url": download_link(job.id, user.id) if can_dl else None,
        "link_seconds": settings().download_link_seconds,
        "active": job.status in ACTIVE_STATUSES,
        "can_cancel": job.status in ACTIVE_STATUSES and (is_requester or user.role == Role.steward.value),
        # re-runs of post-processing: stewards only, while the release awaits approval
        "candidates": (view.get("candidates") or []) if staff else [],
        "can_rerun": user.role == Role.steward.value and awaiting and job.kind in candidates.RERUN_KINDS,
        "candidates_active": staff and any(c["status"] in ("queued", "running") for c in view.get("candidates") or []),
    }


def _render_release(job_id: int, status: int = 200, **extra: Any) -> tuple[str, int]:
    with session_scope(settings()) as s:
        user = _user(s)
        job = _job_or_404(s, user, job_id)
        ctx = _release_context(s, user, job)
    ctx.setdefault("approve_form", extra.pop("approve_form", None) or ApproveForm())
    ctx.setdefault("reject_form", extra.pop("reject_form", None) or RejectForm())
    ctx.setdefault("cancel_form", CancelForm())
    ctx.setdefault("rerun_form", extra.pop("rerun_form", None) or RerunForm())
    return render_template("release.html", decision_error=extra.pop("decision_error", None), **ctx), status


@pages.get("/releases/<int:job_id>")
@login_required
def release(job_id: int):  # type: ignore[no-untyped-def]
    return _render_release(job_id)


@pages.get("/releases/<int:job_id>/report")
@login_required
def release_report(job_id: int):  # type: ignore[no-untyped-def]
    """The report HTML for the sandboxed frame: internal for stewards and admins; public for the
    requester once approved (internal too if the steward put it in the bundle)."""
    with session_scope(settings()) as s:
        user = _user(s)
        job = _job_or_404(s, user, job_id)
        staff = user.role in STAFF
        if not job.artifacts:
            raise NotFound(f"release {job_id} has no report yet (status {job.status})")
        storage = get_storage(settings())
        # before approval: the synthetic-only summaries, where they depend on nothing but a DP output
        if not (staff or releases.can_download(user, job) or release_public.report_before_approval(storage, job)):
            _note_denial("report before approval", "release", job_id)
            raise Forbidden("the report is shown once a steward approves the release: " + release_public.AFTER_APPROVAL)
        name = "report.html" if staff or job.include_internal else "report_public.html"
        key = job.artifacts[name]
        fit = fit_for_purpose(job)
    data = storage.get_bytes(key)
    if fit is not None:  # the approved release: the report as in the bundle, with its fit-for-purpose answer
        from core.bundle import with_fit_for_purpose

        data = with_fit_for_purpose({"report.html": data}, fit)["report.html"]
    resp = Response(data, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = REPORT_CSP
    resp.headers["X-Frame-Options"] = "SAMEORIGIN"
    resp.headers["Cache-Control"] = "no-store"
    return resp


@pages.get("/releases/<int:job_id>/candidates/<int:number>/report")
@login_required
def candidate_report(job_id: int, number: int):  # type: ignore[no-untyped-def]
    """A candidate's internal report, for stewards and admins choosing which candidate to approve."""
    with session_scope(settings()) as s:
        user = _user(s)
        job = _job_or_404(s, user, job_id)
        try:
            key = candidates.candidate_report_key(s, user, job, number, "html")
        except (Forbidden, NotFound) as exc:
            _note_denial(exc.message, "release", job_id)
            raise
    resp = Response(get_storage(settings()).get_bytes(key), mimetype="text/html")
    resp.headers["Content-Security-Policy"] = REPORT_CSP
    resp.headers["X-Frame-Options"] = "SAMEORIGIN"
    resp.headers["Cache-Control"] = "no-store"
    return resp


@pages.post("/releases/<int:job_id>/approve")
@login_required
def release_approve(job_id: int):  # type: ignore[no-untyped-def]
    form = ApproveForm()
    if not form.validate_on_submit():
        return _render_release(job_id, 400, approve_form=form)
    cfg = settings()
    try:
        with write_session(cfg) as s:
            user = _user(s)
            job = _job_or_404(s, user, job_id)
            releases.approve(
                s,
                user,
                job,
                comment=(form.comment.data or "").strip() or None,
                override=form.override.data or None,
                include_internal=bool(form.include_internal.data),
                candidate=form.candidate.data,
            )
            releases.make_bundle(s, get_storage(cfg), cfg, job)
            notify_after_commit(s, cfg, APPROVED, job.id)
    except Forbidden as exc:
        # core records the refusal in the transaction that the refusal rolls back: record it again here
        _note_denial(exc.message, "release", job_id)
        return _render_release(job_id, 403, decision_error=exc.message, approve_form=form)
    except (Conflict, InvalidRequest) as exc:
        _apply_errors(form, exc, {"override": "override", "comment": "comment", "candidate": "candidate"})
        return _render_release(job_id, exc.status, approve_form=form)
    flash("Release approved: its bundle is signed and the requester can download it.", "ok")
    return redirect(url_for("pages.release", job_id=job_id))


@pages.post("/releases/<int:job_id>/rerun")
@login_required
def release_rerun(job_id: int):  # type: ignore[no-untyped-def]
    """Queue a re-run of the release's post-processing with the form's settings (steward only)."""
    form = RerunForm()
    if not form.validate_on_submit():
        return _render_release(job_id, 400, rerun_form=form)
    body: dict[str, Any] = {}
    try:
        policy = _yaml_mapping(form.policy_text.data, "policy_text")
        if form.k.data is not None:
            policy["k"] = form.k.data
        if form.suppression.data:
            policy["suppression"] = form.suppression.data
        if policy:
            body["policy"] = policy
        schema = _yaml_mapping(form.schema_text.data, "schema_text")
        if schema:
            body["schema"] = schema
    except InvalidRequest as exc:
        _apply_errors(form, exc, {})
        return _render_release(job_id, 400, rerun_form=form)
    if form.rows.data is not None:
        body["rows"] = form.rows.data
    if (form.comment.data or "").strip():
        body["comment"] = form.comment.data.strip()
    cfg = settings()
    try:
        with write_session(cfg) as s:
            user = _user(s)
            job = _job_or_404(s, user, job_id)
            cand = candidates.request_rerun(s, get_storage(cfg), user, job, body)
            cand_id, number = cand.id, cand.number
    except Forbidden as exc:
        _note_denial(exc.message, "release", job_id)
        return _render_release(job_id, 403, rerun_form=form)
    except (Conflict, InvalidRequest, PrivacyError) as exc:
        _apply_errors(form, exc, {"rows": "rows", "policy": "policy_text", "schema": "schema_text"})
        return _render_release(job_id, exc.status, rerun_form=form)
    from workers.enqueue import enqueue_rerun

    try:
        enqueue_rerun(cand_id, cfg)
    except Exception as exc:
        log.exception("could not enqueue candidate %s", cand_id)
        from workers.rerun import fail_candidate

        fail_candidate(cfg, cand_id, "queue_unavailable", "the job queue is unavailable; try again shortly", repr(exc))
        flash("The job queue is unavailable: the re-run was not queued. Try again shortly.", "error")
        return redirect(url_for("pages.release", job_id=job_id))
    flash(f"Re-run queued as candidate {number}: post-processing of the same sample, nothing is charged.", "ok")
    return redirect(url_for("pages.release", job_id=job_id) + "#candidates")


def _yaml_mapping(text: str | None, field: str) -> dict[str, Any]:
    if not (text or "").strip():
        return {}
    try:
        data = yaml.safe_load(text or "")
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"not valid YAML: {exc}", field=field) from exc
    if not isinstance(data, dict):
        raise InvalidRequest("give a mapping of settings (name: value)", field=field)
    return data


@pages.post("/releases/<int:job_id>/reject")
@login_required
def release_reject(job_id: int):  # type: ignore[no-untyped-def]
    form = RejectForm()
    if not form.validate_on_submit():
        return _render_release(job_id, 400, reject_form=form)
    try:
        with write_session(settings()) as s:
            user = _user(s)
            job = _job_or_404(s, user, job_id)
            releases.reject(s, user, job, form.comment.data or "")
            notify_after_commit(s, settings(), REJECTED, job.id)
    except Forbidden as exc:
        _note_denial(exc.message, "release", job_id)
        return _render_release(job_id, 403, decision_error=exc.message, reject_form=form)
    except (Conflict, InvalidRequest) as exc:
        _apply_errors(form, exc, {"comment": "comment"})
        return _render_release(job_id, exc.status, reject_form=form)
    flash("Release rejected. The budget it spent stays spent.", "ok")
    return redirect(url_for("pages.release", job_id=job_id))


@pages.post("/releases/<int:job_id>/cancel")
@login_required
def release_cancel(job_id: int):  # type: ignore[no-untyped-def]
    if not CancelForm().validate_on_submit():
        return _render_release(job_id, 400, decision_error="the form expired; reload the page and try again")
    try:
        with write_session(settings()) as s:
            user = _user(s)
            job = _job_or_404(s, user, job_id)
            done = releases.cancel_release(s, user, job)
    except Forbidden as exc:
        _note_denial(exc.message, "release", job_id)
        return _render_release(job_id, 403, decision_error=exc.message)
    except Conflict as exc:
        return _render_release(job_id, exc.status, decision_error=exc.message)
    flash(
        "Release cancelled: "
        + (
            "its reservation was given back."
            if done["reservation_released"]
            else "its charge stays, the mechanism had read the data."
            if done["data_read"]
            else "nothing was charged."
        ),
        "ok",
    )
    return redirect(url_for("pages.release", job_id=job_id))


@pages.get("/releases/<int:job_id>/download")
def download(job_id: int):  # type: ignore[no-untyped-def]
    """The signed bundle, for the session's user or the holder of a fresh signed link."""
    cfg = settings()
    link = request.args.get("link")
    via = "session"
    if link:
        try:
            claims = _download_serializer().loads(link, max_age=cfg.download_link_seconds)
        except SignatureExpired:
            raise InvalidRequest(
                "this download link has expired; open the release page for a new one", code="link_expired"
            ) from None
        except BadSignature:
            _note_denial("bad download link", "release", job_id)
            raise NotFound(f"no release {job_id} (or it is not yours to see)") from None
        if not isinstance(claims, dict) or claims.get("job") != job_id:
            _note_denial("download link for another release", "release", job_id)
            raise NotFound(f"no release {job_id} (or it is not yours to see)")
        user_id = int(claims.get("user", 0))
        via = "signed link"
    elif current_user.is_authenticated:
        user_id = int(current_user.id)
    else:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    with write_session(cfg) as s:
        user = s.get(User, user_id)
        if user is None or not user.active:
            _note_denial("download link of a missing or disabled user", "release", job_id)
            raise NotFound(f"no release {job_id} (or it is not yours to see)")
        g.link_user = user.username
        job = _job_or_404(s, user, job_id)
        key, refused = releases.authorise_download(s, get_storage(cfg), cfg, user, job, via)
    if refused is not None:
        raise refused
    assert key is not None
    resp = send_file(
        get_storage(cfg).open(key),
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"synthgate-release-{job_id}.zip",
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp
