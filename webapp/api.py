"""The JSON API under /api/v1 (bearer-token auth). The CLI is a client of it."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request, send_file
from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename

from core import audit, release_public, releases
from core.auth import create_token_row, revoke_token
from core.bundle import public_key_pem, with_fit_for_purpose
from core.db import session_scope, write_session
from core.errors import Forbidden, InvalidRequest, NotFound
from core.ledger import ledger_summary
from core.models import AuditEvent, Dataset, ReleaseJob, Role, User
from core.notifications import APPROVED, REJECTED
from core.notifications import after_commit as notify_after_commit
from core.storage import copy_hashed, get_storage
from core.views import fit_for_purpose
from webapp.auth import api_user, record_auth_failure, settings
from webapp.headers import REPORT_CSP, REPORT_FRAME_OPTIONS
from webapp.submit import submit_release

log = logging.getLogger(__name__)

api = Blueprint("api", __name__, url_prefix="/api/v1")


def _json() -> dict[str, Any]:
    if not request.data:
        return {}
    body = releases.json_body(request.get_data())
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _yaml_text(text: str | None) -> str | None:
    """Schema text from a user, made sure to be read as text: `load_schema` takes a one-line
    string for a file name, and the server must never read a file a user names."""
    if text is None or "\n" in text:
        return text
    return text + "\n"


def _form_text(name: str) -> str | None:
    """A text part of a multipart request: the file of that name if one is attached, else the field."""
    text = request.form.get(name) or None
    if name in request.files and request.files[name].filename:
        text = request.files[name].read().decode("utf-8", errors="replace")
    return text


def _attach(user: User, s) -> User:  # type: ignore[no-untyped-def]
    return s.merge(user, load=False)


@contextmanager
def _dataset_of(user: User, ref: str, *, write: bool = False) -> Iterator[tuple[Session, User, Dataset]]:
    """A session (a write session if `write`), `user` in it, and the dataset `ref` that user may see.

    A dataset the user may not see is NotFound, and the refusal is audited (`_visible_dataset`)."""
    with (write_session if write else session_scope)(settings()) as s:
        user = _attach(user, s)
        yield s, user, _visible_dataset(s, user, ref)


@api.get("/health")
def health() -> Response:
    from sqlalchemy import text

    with session_scope(settings()) as s:
        s.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})


@api.get("/me")
def me() -> Response:
    user = api_user()
    return jsonify({"id": user.id, "username": user.username, "role": user.role})


@api.get("/methods")
def methods() -> Response:
    api_user()
    from privacy.synthesizers import method_catalogue

    return jsonify({"methods": method_catalogue()})


@api.get("/openapi.json")
def openapi() -> Response:
    from webapp.openapi import openapi_document

    return jsonify(openapi_document(request.script_root + api.url_prefix))


@api.get("/signing-key")
def signing_key() -> Response:
    from core.bundle import key_fingerprint, public_key_pem

    pem = public_key_pem(settings())
    return jsonify({"algorithm": "Ed25519", "public_key_pem": pem, "fingerprint": key_fingerprint(pem)})


# ---------------------------------------------------------------------------------------- datasets


@api.get("/datasets")
def list_datasets() -> Response:
    user = api_user()
    with session_scope(settings()) as s:
        user = _attach(user, s)
        return jsonify({"datasets": [releases.dataset_view(s, user, d) for d in releases.visible_datasets(s, user)]})


@api.post("/datasets")
def register_dataset() -> Response:
    user = api_user()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidRequest("attach the table as a multipart file field named 'file'", field="file")
    form = request.form
    schema_text = _yaml_text(_form_text("schema"))
    policy_text = _form_text("policy")
    storage = get_storage(settings())
    ds_id: int | None = None
    with tempfile.TemporaryDirectory(dir=settings().data_dir) as tmp:
        path = Path(tmp) / (secure_filename(upload.filename) or ("upload" + Path(upload.filename).suffix.lower()))
        sha256 = copy_hashed(upload.stream, path)
        try:
            with write_session(settings()) as s:
                user = _attach(user, s)
                ds, issues = releases.register_dataset(
                    s,
                    storage,
                    user,
                    upload_path=path,
                    filename=upload.filename,
                    name=form.get("name", ""),
                    schema_text=schema_text,
                    epsilon_budget=form.get("epsilon_budget"),
                    delta_budget=form.get("delta_budget"),
                    policy_text=policy_text,
                    description=form.get("description"),
                    settings=settings(),
                    file_sha256=sha256,
                )
                ds_id = ds.id
                view = releases.dataset_view(s, user, ds)
        except BaseException:
            if ds_id is not None:  # stored, then the transaction failed: leave nothing behind
                storage.delete_prefix(f"datasets/{ds_id}")
            raise
    return jsonify({"dataset": view, "issues": issues}), 201


@api.get("/datasets/<ref>")
def show_dataset(ref: str) -> Response:
    user = api_user()
    with _dataset_of(user, ref) as (s, user, ds):
        view = releases.dataset_view(s, user, ds, with_ledger=True)
        # the request form's advice at `?epsilon=` (privacy/advice.py: public facts only), once the schema is public
        view["recommended"] = _recommended(ds, request.args.get("epsilon")) if ds.schema_confirmed else None
        return jsonify({"dataset": view})


def _recommended(ds: Dataset, epsilon: str | None) -> dict[str, Any]:
    from privacy.advice import advice_view, allowed_by_policy
    from privacy.policy import DatasetPolicy
    from privacy.schema import PublicSchema
    from webapp.pages.helpers import method_choices

    policy = DatasetPolicy.from_dict(ds.policy)
    available = [m["name"] for m in method_choices() if allowed_by_policy(m["guarantee"], policy)]
    return advice_view(PublicSchema.from_dict(ds.public_schema), policy, epsilon, available=available)


@api.route("/datasets/<ref>/estimate", methods=["GET", "POST"])
def dataset_estimate(ref: str) -> Response:
    """The time estimate of a release before it is requested (core/estimates.py: public facts only).

    GET takes method, epsilon, delta, rows and `option=name=value` (repeated) in the query string;
    POST takes the body of a release request."""
    from core.errors import Conflict
    from core.estimates import request_estimate

    user = api_user()
    if request.method == "POST":
        query = _json()
    else:
        query = {k: request.args.get(k) for k in ("method", "epsilon", "delta", "rows")}
        options: dict[str, str] = {}
        for item in request.args.getlist("option"):
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise InvalidRequest(f"option must be name=value, got {item!r}", field="options")
            options[name.strip()] = value.strip()
        query["options"] = options
    with _dataset_of(user, ref) as (s, user, ds):
        if not ds.schema_confirmed:
            raise Conflict(f"dataset '{ds.name}' has no confirmed schema yet: nothing to estimate", field="dataset")
        return jsonify({"estimate": request_estimate(s, ds, query)})


@api.put("/datasets/<ref>/schema")
def confirm_schema(ref: str) -> Response:
    user = api_user()
    body = _json()
    schema = body.get("schema")
    if schema is None:
        raise InvalidRequest('send {"schema": {...}} or {"schema": "<yaml text>"}', field="schema")
    if isinstance(schema, str):
        schema = _yaml_text(schema)
    with _dataset_of(user, ref, write=True) as (s, user, ds):
        issues = releases.confirm_schema(
            s, user, ds, schema, get_storage(settings()), note=body.get("note"), base_version=body.get("base_version")
        )
        return jsonify({"dataset": releases.dataset_view(s, user, ds), "issues": issues})


@api.get("/datasets/<ref>/schema/versions")
def schema_history(ref: str) -> Response:
    """Every confirmed version of the dataset's public schema, newest first (stewards and admins)."""
    from core import schema_versions

    user = api_user()
    with _dataset_of(user, ref) as (s, user, ds):
        releases.require_role(user, Role.steward, Role.admin)
        return jsonify(
            {
                "dataset": ds.name,
                "versions": [
                    schema_versions.version_view(v, True, with_schema=True) for v in schema_versions.history(s, ds.id)
                ],
            }
        )


@api.put("/datasets/<ref>/policy")
def update_policy(ref: str) -> Response:
    from privacy.policy import DatasetPolicy
    from privacy.schema import PublicSchema

    user = api_user()
    body = _json()
    with _dataset_of(user, ref, write=True) as (s, user, ds):
        pending = releases.update_policy(
            s, user, ds, body.get("policy"), body.get("epsilon_budget"), body.get("delta_budget"), settings=settings()
        )
        out = {
            "dataset": releases.dataset_view(s, user, ds, with_ledger=True),
            "issues": releases.disclosure_issues(
                PublicSchema.from_dict(ds.public_schema), DatasetPolicy.from_dict(ds.policy)
            ),
        }
        if pending is not None:  # the budget raise waits for a second steward (202: accepted, not applied)
            from core.confirmations import change_view

            out["awaiting_confirmation"] = change_view(pending)
            return jsonify(out), 202
        return jsonify(out)


@api.post("/datasets/<ref>/grants")
def grant(ref: str) -> Response:
    user = api_user()
    body = _json()
    with _dataset_of(user, ref, write=True) as (s, user, ds):
        releases.grant(s, user, ds, str(body.get("user", "")))
        return jsonify({"dataset": releases.dataset_view(s, user, ds)}), 201


@api.delete("/datasets/<ref>/grants/<username>")
def revoke(ref: str, username: str) -> Response:
    user = api_user()
    with _dataset_of(user, ref, write=True) as (s, user, ds):
        removed = releases.revoke_grant(s, user, ds, username)
        return jsonify({"revoked": removed})


@api.post("/datasets/<ref>/erase-raw")
def erase_raw(ref: str) -> Response:
    """Erase the dataset's raw data (steward or admin, with a reason): core/erasure.py."""
    from core.erasure import erase_raw_data

    user = api_user()
    body = _json()
    cfg = settings()
    with _dataset_of(user, ref, write=True) as (s, user, ds):
        try:
            done = erase_raw_data(s, user, ds, body.get("reason"), storage=get_storage(cfg), settings=cfg)
        except Forbidden as exc:
            record_auth_failure(f"erase raw data of {ref}: {exc.message}", actor=user.username, action="authz.denied")
            raise
        return jsonify({"erasure": done, "dataset": releases.dataset_view(s, user, ds)})


@api.get("/datasets/<ref>/ledger")
def dataset_ledger(ref: str) -> Response:
    user = api_user()
    with _dataset_of(user, ref) as (s, user, ds):
        summary = ledger_summary(s, ds, user)
        return jsonify({"ledger": summary.to_dict(), "text": summary.describe()})


# ---------------------------------------------------------------------------------------- releases


@api.get("/releases")
def list_releases() -> Response:
    user = api_user()
    status = request.args.get("status")
    dataset = request.args.get("dataset")
    with session_scope(settings()) as s:
        user = _attach(user, s)
        ds_id = _visible_dataset(s, user, dataset).id if dataset else None
        jobs = releases.visible_jobs(s, user, ds_id, status)
        return jsonify({"releases": [releases.job_view(s, user, j) for j in jobs]})


@api.post("/releases")
def request_release() -> Response:
    user = api_user()
    req = releases.ReleaseRequest.parse(_json())
    cfg = settings()
    username = user.username
    try:
        # a queue that cannot take the job raises QueueUnavailable: a 503 once the job is failed
        job_id = submit_release(cfg, user, req)
    except NotFound as exc:
        if exc.field == "dataset":
            record_auth_failure(
                f"release request on dataset {req.dataset!r}: not visible", actor=username, action="authz.denied"
            )
        raise
    with session_scope(cfg) as s:
        user = _attach(user, s)
        job = s.get(ReleaseJob, job_id)
        return jsonify({"release": releases.job_view(s, user, job)}), 202


@api.get("/releases/<int:job_id>")
def show_release(job_id: int) -> Response:
    user = api_user()
    with session_scope(settings()) as s:
        user = _attach(user, s)
        job = _visible_job(s, user, job_id)
        view = releases.job_view(s, user, job)
        # awaiting approval: the public part the requester may see before the decision (core/release_public.py)
        view["public"] = release_public.preview(s, get_storage(settings()), job)
        return jsonify({"release": view})


def _visible_dataset(s, user: User, ref: str):  # type: ignore[no-untyped-def]
    try:
        return releases.get_dataset(s, user, ref)
    except NotFound:
        record_auth_failure(f"dataset {ref} not visible", actor=user.username, action="authz.denied")
        raise


def _visible_job(s, user: User, job_id: int) -> ReleaseJob:  # type: ignore[no-untyped-def]
    try:
        return releases.get_job(s, user, job_id)
    except NotFound:
        record_auth_failure(f"release {job_id} not visible", actor=user.username, action="authz.denied")
        raise


@api.post("/releases/<int:job_id>/approve")
def approve(job_id: int) -> Response:
    user = api_user()
    body = _json()
    cfg = settings()
    with write_session(cfg) as s:
        user = _attach(user, s)
        job = _visible_job(s, user, job_id)
        try:
            releases.approve(
                s,
                user,
                job,
                comment=body.get("comment"),
                override=body.get("override"),
                include_internal=bool(body.get("include_internal", False)),
                candidate=body.get("candidate"),
            )
        except Forbidden as exc:
            record_auth_failure(f"approve release {job_id}: {exc.message}", actor=user.username, action="authz.denied")
            raise
        releases.make_bundle(s, get_storage(cfg), cfg, job)
        notify_after_commit(s, cfg, APPROVED, job.id)
        return jsonify({"release": releases.job_view(s, user, job)})


@api.post("/releases/<int:job_id>/reject")
def reject(job_id: int) -> Response:
    user = api_user()
    body = _json()
    with write_session(settings()) as s:
        user = _attach(user, s)
        job = _visible_job(s, user, job_id)
        releases.reject(s, user, job, str(body.get("comment") or ""))
        notify_after_commit(s, settings(), REJECTED, job.id)
        return jsonify({"release": releases.job_view(s, user, job)})


@api.get("/releases/<int:job_id>/report")
def report(job_id: int) -> Response:
    """The report: full (internal) for stewards; public sections for the requester once approved."""
    user = api_user()
    fmt = request.args.get("format", "html")
    with session_scope(settings()) as s:
        user = _attach(user, s)
        job = _visible_job(s, user, job_id)
        staff = user.role in (Role.steward.value, Role.admin.value)
        if not job.artifacts:
            raise NotFound(f"release {job_id} has no report yet (status {job.status})")
        storage = get_storage(settings())
        if not (staff or releases.can_download(user, job) or release_public.report_before_approval(storage, job)):
            raise Forbidden("the report is shown once a steward approves the release: " + release_public.AFTER_APPROVAL)
        name = ("report" if staff or job.include_internal else "report_public") + (
            ".json" if fmt == "json" else ".html"
        )
        data = storage.get_bytes(job.artifacts[name])
        # an approved release: the report as in the bundle, with its "Fit for the stated purpose?" answer
        as_in_bundle = "report.json" if fmt == "json" else "report.html"
        data = with_fit_for_purpose({as_in_bundle: data}, fit_for_purpose(job))[as_in_bundle]
    resp = Response(data, mimetype="application/json" if fmt == "json" else "text/html")
    resp.headers["Cache-Control"] = "no-store"
    # the same sandbox and frame rules as the report page route
    resp.headers["Content-Security-Policy"] = REPORT_CSP
    resp.headers["X-Frame-Options"] = REPORT_FRAME_OPTIONS
    return resp


@api.get("/releases/<int:job_id>/bundle")
def download_bundle(job_id: int) -> Response:
    user = api_user()
    cfg = settings()
    with write_session(cfg) as s:
        user = _attach(user, s)
        job = _visible_job(s, user, job_id)
        key, refused = releases.authorise_download(s, get_storage(cfg), cfg, user, job)
        if refused is not None:
            s.commit()
            raise refused
    assert key is not None
    storage = get_storage(cfg)
    resp = send_file(
        storage.open(key),
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"synthgate-release-{job_id}.zip",
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


# ---------------------------------------------------------------------------------------- tokens


@api.post("/tokens")
def new_token() -> Response:
    user = api_user()
    body = _json()
    with write_session(settings()) as s:
        user = _attach(user, s)
        token, row = create_token_row(s, user, label=body.get("label"))
        audit.record(s, "token.create", actor=user, object_type="user", object_id=user.id)
        return jsonify({"token": token, "id": row.id, "note": "shown once: store it now"}), 201


@api.delete("/tokens/<int:token_id>")
def delete_token(token_id: int) -> Response:
    user = api_user()
    with write_session(settings()) as s:
        user = _attach(user, s)
        owner = None if user.role == Role.admin.value else user
        try:
            row = revoke_token(s, token_id, owner)
        except NotFound:
            record_auth_failure(f"token {token_id} not visible", actor=user.username, action="authz.denied")
            raise
        audit.record(s, "token.revoke", actor=user, object_type="token", object_id=row.id)
        return jsonify({"revoked": token_id})


# ---------------------------------------------------------------------------------------- audit

MAX_AUDIT_EVENTS = 5000


def _int_arg(name: str, *, default: int, lo: int, hi: int) -> int:
    """A whole-number query parameter within [lo, hi], or InvalidRequest saying what to give."""
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9 or not lo <= int(text) <= hi:
        raise InvalidRequest(f"{name} must be a whole number from {lo} to {hi}, got {raw[:40]!r}", field=name)
    return int(text)


@api.get("/audit")
def audit_log() -> Response:
    user = api_user()
    if user.role not in (Role.steward.value, Role.admin.value):
        raise Forbidden("the audit log is for stewards and admins")
    limit = _int_arg("limit", default=200, lo=1, hi=MAX_AUDIT_EVENTS)
    action = request.args.get("action")
    with session_scope(settings()) as s:
        q = s.query(AuditEvent).order_by(AuditEvent.id.desc())
        if action:
            q = q.filter(
                AuditEvent.action.like(
                    action.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%", escape="\\"
                )
            )
        events = [
            {
                "id": e.id,
                "at": e.created_at.isoformat(timespec="seconds"),
                "actor": e.actor,
                "action": e.action,
                "object_type": e.object_type,
                "object_id": e.object_id,
                "detail": e.detail,
                "hash": e.hash,
            }
            for e in q.limit(limit)
        ]
        check = audit.verify_anchored(s, get_storage(settings()), public_key_pem(settings()))
    return jsonify({"events": events, "chain": check.to_dict()})
