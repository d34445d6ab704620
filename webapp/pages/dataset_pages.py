"""Datasets: register, show, grants, schema confirmation and policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session

from core import releases, schema_versions, staging
from core.comparison import release_comparison
from core.db import session_scope, write_session
from core.errors import Conflict, InvalidRequest, NotFound, ServiceError
from core.ledger import ledger_summary
from core.models import Dataset, Role, User
from core.storage import Storage, get_storage
from privacy.errors import PrivacyError
from webapp.auth import settings
from webapp.pages import register_checks
from webapp.pages import schema_form as editor_rows
from webapp.pages.blueprint import pages
from webapp.pages.forms import DatasetForm, GrantForm, PolicyForm, PostForm, SchemaEditorForm, SchemaForm
from webapp.pages.helpers import (
    STAFF,
    _apply_errors,
    _budget_view,
    _dataset_or_404,
    _note_denial,
    _require,
    _user,
)

_DATASET_FIELDS = {
    "name": "name",
    "file": "file",
    "schema": "schema_text",
    "epsilon_budget": "epsilon_budget",
    "delta_budget": "delta_budget",
    "policy": "policy_text",
    "description": "description",
}


@pages.route("/datasets/new", methods=["GET", "POST"])
@login_required
def dataset_new():  # type: ignore[no-untyped-def]
    cfg = settings()
    with session_scope(cfg) as s:
        user = _user(s)
        _require(user, Role.steward)
        user_id = user.id
    form = DatasetForm()
    if request.method == "GET":
        form.epsilon_budget.data = cfg.default_epsilon_budget
        form.delta_budget.data = cfg.default_delta_budget
        return render_template("dataset_new.html", form=form, staged=None), 200
    valid = form.validate()  # every field's own checks (required, lengths), all reported
    if form.schema_file.data and getattr(form.schema_file.data, "filename", ""):
        # a file input cannot be filled again: the schema file's text goes in the text field, kept there
        form.schema_text.data = form.schema_file.data.read().decode("utf-8", errors="replace")
    schema_text = (form.schema_text.data or "").strip() or None
    policy_text = (form.policy_text.data or "").strip() or None
    storage = get_storage(cfg)
    upload = form.file.data
    if upload is not None and getattr(upload, "filename", ""):
        staging.discard(storage, user_id, form.staged.data)
        staged = staging.stage(storage, user_id, upload.stream, upload.filename or "upload.csv", Path(cfg.data_dir))
    else:
        staged = staging.find(storage, user_id, form.staged.data)
        if staged is None:
            form.file.errors = [*form.file.errors, "choose the table to upload"]
    with session_scope(cfg) as s:
        problems, schema = register_checks.check_fields(
            s,
            name=(form.name.data or "").strip(),
            epsilon=form.epsilon_budget.data or "",
            delta=form.delta_budget.data or "",
            schema_text=schema_text,
            policy_text=policy_text,
        )
    if staged is not None and (problems or not valid):
        with storage.local_path(staged.key) as path:
            problems += register_checks.check_table(path, staged.filename, schema, cfg)
    if problems or not valid or staged is None:
        for problem in problems:
            _apply_errors(form, InvalidRequest(problem.message, field=problem.field), _DATASET_FIELDS)
        statuses = {p.status for p in problems}
        return _render_new(form, storage, user_id, staged, statuses.pop() if len(statuses) == 1 else 400)
    ds_id: int | None = None
    try:
        with storage.local_path(staged.key) as path:
            try:
                with write_session(cfg) as s:
                    ds, issues = releases.register_dataset(
                        s,
                        storage,
                        _user(s),
                        upload_path=path,
                        filename=staged.filename,
                        name=(form.name.data or "").strip(),
                        schema_text=schema_text,
                        epsilon_budget=form.epsilon_budget.data,
                        delta_budget=form.delta_budget.data,
                        policy_text=policy_text,
                        description=(form.description.data or "").strip() or None,
                        settings=cfg,
                        file_sha256=staged.sha256,
                    )
                    ds_id = ds.id
                    confirmed = ds.schema_confirmed
            except BaseException:
                if ds_id is not None:  # stored, then the transaction failed: leave nothing behind
                    storage.delete_prefix(f"datasets/{ds_id}")
                raise
    except (ServiceError, PrivacyError) as exc:
        if exc.status >= 500:
            raise
        message = register_checks.named(exc.message, Path(staged.key), staged.filename)
        _apply_errors(form, InvalidRequest(message, field=exc.field), _DATASET_FIELDS)
        return _render_new(form, storage, user_id, staged, exc.status)
    staging.discard(storage, user_id, staged.token)
    warnings = [i for i in issues if i["severity"] != "error"]
    if confirmed:
        flash(f"Dataset registered with its public schema ({len(warnings)} warning(s)).", "ok")
    else:
        flash(
            "Dataset registered. A schema was proposed from the data: review it, change what is not public "
            "knowledge, and confirm it before releases can be requested.",
            "warn",
        )
    return redirect(url_for("pages.dataset", dataset_id=ds_id))


def _render_new(
    form: DatasetForm, storage: Storage, user_id: int, staged: staging.StagedUpload | None, status: int
) -> tuple[str, int]:
    """The register form again, every error beside its field; a usable upload kept, a broken one dropped."""
    if staged is not None and form.file.errors:
        staging.discard(storage, user_id, staged.token)
        staged = None
    form.staged.data = staged.token if staged is not None else ""
    return render_template("dataset_new.html", form=form, staged=staged), status


def _dataset_context(s: Session, user: User, ds: Dataset) -> dict[str, Any]:
    from privacy.schema import PublicSchema

    staff = user.role in STAFF
    view = releases.dataset_view(s, user, ds, with_ledger=True)
    summary = ledger_summary(s, ds, user)
    schema = PublicSchema.from_dict(ds.public_schema)
    # a proposed schema was read from the raw data: only the steward and admins see it
    show_schema = ds.schema_confirmed or staff
    columns = []
    if show_schema:
        for name, spec in schema.columns.items():
            if spec.values is not None:
                domain = ", ".join(str(v) for v in spec.values)
            elif spec.min is not None or spec.max is not None:
                domain = f"{'open' if spec.min is None else spec.min} … {'open' if spec.max is None else spec.max}"
            else:
                domain = "open (learned with epsilon)" if spec.kind not in ("identifier", "text") else "—"
            roles = [
                r
                for r, members in (("quasi-identifier", schema.quasi_identifiers), ("sensitive", schema.sensitive))
                if name in members
            ]
            if schema.target == name:
                roles.append("target")
            columns.append(
                {
                    "name": name,
                    "kind": spec.kind,
                    "domain": domain,
                    "nullable": spec.nullable,
                    "integer": spec.integer,
                    "roles": roles,
                    "learned": list(spec.learned),
                    "identifier": spec.identifier if spec.kind == "identifier" else None,
                    "description": spec.description,
                }
            )
    jobs = [releases.job_view(s, user, j) for j in releases.visible_jobs(s, user, ds.id)[:50]]
    policy_yaml = yaml.safe_dump(ds.policy or {}, sort_keys=False)
    current = schema_versions.current_version(s, ds.id) if ds.schema_confirmed else None
    return {
        "ds": view,
        "dataset_id": ds.id,
        "columns": columns,
        "show_schema": show_schema,
        # the text a steward confirms (a proposed schema) or edits into the next version (a confirmed one)
        "schema_yaml": schema.to_yaml() if user.role == Role.steward.value else None,
        "schema_version": schema_versions.version_view(current, staff) if current is not None else None,
        "schema_history": [schema_versions.version_view(v, True) for v in schema_versions.history(s, ds.id)]
        if staff
        else [],
        "learned": schema.learned_columns if show_schema else {},
        "budget": _budget_view(summary.status),
        "history": summary.history,
        "history_own": summary.history_scope == "own",
        "jobs": jobs,
        # finished releases side by side, computed on real rows: stewards and admins only
        "comparison": release_comparison(s, ds) if staff else None,
        "policy_yaml": policy_yaml,
        "staff": staff,
        "can_request": ds.schema_confirmed and user.role in (Role.analyst.value, Role.steward.value),
        "is_steward": user.role == Role.steward.value,
        # the per-column editor; suggestions were learned from raw rows: stewards only
        "editor": editor_rows.rows_from_schema(ds.public_schema, ds.schema_suggestions)
        if user.role == Role.steward.value
        else None,
    }


def _render_dataset(
    dataset_id: int, status: int = 200, editor: editor_rows.EditorState | None = None, **forms: FlaskForm
) -> tuple[str, int]:
    with session_scope(settings()) as s:
        user = _user(s)
        ds = _dataset_or_404(s, user, dataset_id)
        ctx = _dataset_context(s, user, ds)
    if editor is not None and ctx["editor"] is not None:  # the rows as typed, with their errors
        ctx["editor"] = editor
    grant_form = forms.get("grant_form") or GrantForm()
    schema_form = forms.get("schema_form") or SchemaForm(
        schema_text=ctx["schema_yaml"] or "",
        base_version=str(ctx["schema_version"]["version"]) if ctx["schema_version"] else "",
    )
    policy_form = forms.get("policy_form") or PolicyForm(policy_text=ctx["policy_yaml"])
    # "0" for a proposal: a confirmation by another steward meanwhile is refused, not overwritten
    editor_form = forms.get("editor_form") or SchemaEditorForm(
        base_version=str(ctx["schema_version"]["version"]) if ctx["schema_version"] else "0"
    )
    return render_template(
        "dataset.html",
        grant_form=grant_form,
        schema_form=schema_form,
        editor_form=editor_form,
        kinds=editor_rows.KINDS,
        roles=editor_rows.ROLE_LABELS,
        policy_form=policy_form,
        revoke_form=PostForm(),
        **ctx,
    ), status


@pages.get("/datasets/<int:dataset_id>")
@login_required
def dataset(dataset_id: int):  # type: ignore[no-untyped-def]
    return _render_dataset(dataset_id)


@pages.post("/datasets/<int:dataset_id>/grants")
@login_required
def dataset_grant(dataset_id: int):  # type: ignore[no-untyped-def]
    form = GrantForm()
    if not form.validate_on_submit():
        return _render_dataset(dataset_id, 400, grant_form=form)
    try:
        with write_session(settings()) as s:
            user = _user(s)
            ds = _dataset_or_404(s, user, dataset_id)
            if user.role not in STAFF:
                _note_denial("grant needs steward or admin", "dataset", dataset_id)
            releases.grant(s, user, ds, (form.username.data or "").strip())
    except NotFound as exc:
        if exc.field != "user":
            raise
        _apply_errors(form, exc, {"user": "username"})
        return _render_dataset(dataset_id, 404, grant_form=form)
    flash(f"Access granted to {form.username.data}.", "ok")
    return redirect(url_for("pages.dataset", dataset_id=dataset_id, _anchor="grants"))


@pages.post("/datasets/<int:dataset_id>/grants/<username>/revoke")
@login_required
def dataset_revoke(dataset_id: int, username: str):  # type: ignore[no-untyped-def]
    form = PostForm()
    if not form.validate_on_submit():
        abort(400)
    with write_session(settings()) as s:
        user = _user(s)
        ds = _dataset_or_404(s, user, dataset_id)
        if user.role not in STAFF:
            _note_denial("revoke needs steward or admin", "dataset", dataset_id)
        removed = releases.revoke_grant(s, user, ds, username)
    flash(f"Access of {username} revoked." if removed else f"{username} had no access.", "ok")
    return redirect(url_for("pages.dataset", dataset_id=dataset_id, _anchor="grants"))


@pages.post("/datasets/<int:dataset_id>/schema")
@login_required
def dataset_schema(dataset_id: int):  # type: ignore[no-untyped-def]
    form = SchemaForm()
    if not form.validate_on_submit():
        return _render_dataset(dataset_id, 400, schema_form=form)
    cfg = settings()
    try:
        with write_session(cfg) as s:
            user = _user(s)
            ds = _dataset_or_404(s, user, dataset_id)
            if user.role != Role.steward.value:
                _note_denial("confirm schema needs steward", "dataset", dataset_id)
            issues, number, change = _confirm(
                s, user, ds, form.schema_text.data or "", form.note.data or None, form.base_version.data
            )
    except (InvalidRequest, Conflict, PrivacyError) as exc:
        _apply_errors(form, exc, {"schema": "schema_text", "note": "note", "base_version": "schema_text"})
        return _render_dataset(dataset_id, exc.status, schema_form=form)
    _flash_confirmed(number, change, issues)
    return redirect(url_for("pages.dataset", dataset_id=dataset_id, _anchor="schema"))


def _confirm(
    s: Session, user: User, ds: Dataset, schema: str | dict[str, Any], note: str | None, base_version: Any
) -> tuple[list[dict[str, str]], int, str]:
    """Confirm or edit the schema (core's one path); its notes, the version in force and what changed."""
    issues = releases.confirm_schema(s, user, ds, schema, get_storage(settings()), note=note, base_version=base_version)
    current = schema_versions.current_version(s, ds.id)
    assert current is not None
    previous = schema_versions.version_of(s, ds.id, current.version - 1)
    change = (
        schema_versions.describe_change(schema_versions.changed_parts(previous.schema, current.schema))
        if previous is not None
        else ""
    )
    return issues, current.version, change


def _flash_confirmed(number: int, change: str, issues: list[dict[str, str]]) -> None:
    """What a confirmation or a new version says to the steward (the YAML form and the editor alike)."""
    if any(note["code"] == "schema_unchanged" for note in issues):
        flash(f"The schema is the same as version {number}: no new version was recorded.", "warn")
    elif number == 1:
        flash(f"Public schema confirmed as version 1 ({len(issues)} note(s)). Releases can now be requested.", "ok")
    else:
        flash(
            f"Public schema version {number} recorded ({change}). Releases requested from now on use it; "
            "releases already requested keep the version they were requested under.",
            "ok",
        )
    for note in issues:
        if note["code"] == "disclosure_preflight":
            flash(note["message"], "warn")


@pages.post("/datasets/<int:dataset_id>/policy")
@login_required
def dataset_policy(dataset_id: int):  # type: ignore[no-untyped-def]
    form = PolicyForm()
    if not form.validate_on_submit():
        return _render_dataset(dataset_id, 400, policy_form=form)
    try:
        with write_session(settings()) as s:
            user = _user(s)
            ds = _dataset_or_404(s, user, dataset_id)
            if user.role != Role.steward.value:
                _note_denial("policy change needs steward", "dataset", dataset_id)
            policy = yaml.safe_load(form.policy_text.data or "") if (form.policy_text.data or "").strip() else {}
            if not isinstance(policy, dict):
                raise InvalidRequest("the policy must be a YAML mapping of settings", field="policy")
            pending = releases.update_policy(
                s,
                user,
                ds,
                policy,
                (form.epsilon_budget.data or "").strip() or None,
                (form.delta_budget.data or "").strip() or None,
                settings=settings(),
            )
            pending_id = pending.id if pending is not None else None
            from privacy.policy import DatasetPolicy
            from privacy.schema import PublicSchema

            notes = releases.disclosure_issues(
                PublicSchema.from_dict(ds.public_schema), DatasetPolicy.from_dict(ds.policy)
            )
    except yaml.YAMLError as exc:
        form.policy_text.errors = [*form.policy_text.errors, f"not valid YAML: {exc}"]
        return _render_dataset(dataset_id, 400, policy_form=form)
    except (InvalidRequest, Conflict, PrivacyError) as exc:
        _apply_errors(
            form, exc, {"policy": "policy_text", "epsilon_budget": "epsilon_budget", "delta_budget": "delta_budget"}
        )
        return _render_dataset(dataset_id, exc.status, policy_form=form)
    if pending_id is not None:
        flash(
            f"Policy updated. The budget raise is above the ceiling: it takes effect when another steward "
            f"confirms change {pending_id}.",
            "ok",
        )
    else:
        flash("Policy and budget updated.", "ok")
    for note in notes:
        flash(note["message"], "warn")
    return redirect(url_for("pages.dataset", dataset_id=dataset_id, _anchor="policy"))
