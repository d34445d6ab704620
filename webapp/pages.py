"""Server-rendered pages for stewards, analysts and admins.

Rules the pages keep:

* every state change is a POST form with a CSRF token (Flask-WTF), never a GET;
* every object is loaded through core/releases.py's access rules, on the
  server: an id the user may not see is a 404, never the data; refusals are
  written to the audit log (after the request's own transaction, so a refusal
  that rolls the request back still leaves its trace);
* nothing computed on real rows reaches an analyst before a steward approves:
  the gate, the report summary and the internal report are for stewards and
  admins; the analyst sees the public report once the release is approved;
* bundles are downloaded with the session or a short-lived signed link bound to
  one user and one release, checked again when it is used.
"""

from __future__ import annotations

import io
import logging
import tempfile
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional

from core import accounts, audit, candidates, confirmations, releases, schema_versions
from core.auth import check_password, end_session, start_session
from core.bundle import public_key_pem
from core.db import session_scope, write_session
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound, ServiceError
from core.ledger import ledger_summary
from core.models import AuditEvent, Dataset, JobStatus, ReleaseJob, Role, User
from core.notifications import APPROVED, REJECTED
from core.notifications import after_commit as notify_after_commit
from core.storage import copy_hashed, get_storage
from privacy.budget import format_value
from privacy.catalogue import SUGGESTED_METHODS
from privacy.errors import PrivacyError
from webapp import ratelimit
from webapp.auth import SESSION_KEY, current_sid, settings

log = logging.getLogger(__name__)

pages = Blueprint("pages", __name__)

STAFF = (Role.steward.value, Role.admin.value)
ACTIVE_STATUSES = (JobStatus.queued.value, JobStatus.running.value)
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
# the report is HTML written by the evaluation library: no script, no network, no forms, sandboxed
REPORT_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox; "
              "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")
STAGE_LABELS = {
    "queued": "Waiting for a worker",
    "starting": "Starting",
    "load": "Loading the table",
    "split": "Holding out a real test split",
    "fit": "Fitting the model (the budget is spent here)",
    "sample": "Sampling synthetic rows",
    "postprocess": "Disclosure control",
    "evaluate": "Evaluating fidelity, utility and risk",
    "write": "Writing the report and artifacts",
    "done": "Done",
}
DOWNLOAD_SALT = "synthgate.bundle-download"


# ================================================================================================
# forms
# ================================================================================================


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired()])


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    new_password = PasswordField("New password", validators=[DataRequired(), Length(max=256)],
                                 description="At least 8 characters; a phrase of unrelated words is best. "
                                             "Common passwords are refused.")
    confirm = PasswordField("New password again", validators=[
        DataRequired(), EqualTo("new_password", message="the two new passwords differ; type the same one twice")])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(r.value) for r in Role])


class PostForm(FlaskForm):
    """A form with nothing but its CSRF token (logout, revoke, disable...)."""


class DatasetForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=128)],
                       description="Letters, digits, '.', '_' or '-'; used in the CLI and the API.")
    file = FileField("Table (CSV or Parquet)", validators=[FileRequired("choose the table to upload")])
    schema_text = TextAreaField("Public schema (YAML)", validators=[Optional()],
                                description="Leave empty to have a schema proposed from the data; releases "
                                            "open once you confirm it.")
    schema_file = FileField("…or a schema file", validators=[Optional()])
    epsilon_budget = StringField("Epsilon budget", validators=[DataRequired()])
    delta_budget = StringField("Delta budget", validators=[DataRequired()])
    policy_text = TextAreaField("Policy (YAML)", validators=[Optional()],
                                description="e.g. 'privacy: dp-only' and the gate thresholds; empty keeps "
                                            "the defaults.")
    description = TextAreaField("Description", validators=[Optional(), Length(max=4000)])


class SchemaForm(FlaskForm):
    schema_text = TextAreaField("Public schema (YAML)", validators=[DataRequired()])
    note = TextAreaField("What changed and why", validators=[Optional(), Length(max=2000)],
                         description="Stewards and admins see it in the history; analysts do not.")
    # the version the text was edited from: a version confirmed meanwhile is not silently undone
    base_version = HiddenField()


class PolicyForm(FlaskForm):
    policy_text = TextAreaField("Policy (YAML)", validators=[Optional()])
    epsilon_budget = StringField("Epsilon budget", validators=[Optional()])
    delta_budget = StringField("Delta budget", validators=[Optional()])


class GrantForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])


class RequestForm(FlaskForm):
    method = SelectField("Method", validators=[DataRequired()])
    epsilon = StringField("Epsilon", validators=[Optional()])
    delta = StringField("Delta", validators=[Optional()])
    rows = IntegerField("Rows", validators=[Optional(), NumberRange(min=1)])
    target = SelectField("Target column", validators=[Optional()])
    rebalance = SelectField("Rebalance the target (post-processing)", validators=[Optional()])
    options = TextAreaField("Method options", validators=[Optional(), Length(max=4000)],
                            description="One per line: name = value.")
    comment = TextAreaField("Purpose (for the steward)", validators=[Optional(), Length(max=2000)])


class ApproveForm(FlaskForm):
    comment = TextAreaField("Comment", validators=[Optional(), Length(max=2000)])
    override = TextAreaField("Override reason", validators=[Optional(), Length(max=2000)],
                             description="Required because the release gate failed.")
    include_internal = BooleanField("Put the internal report sections (computed on real rows) in the bundle")
    candidate = IntegerField("Candidate to release", validators=[Optional(), NumberRange(min=0)])


class RerunForm(FlaskForm):
    """Re-run post-processing on the release's stored sample (core/candidates.py): nothing is charged."""

    k = IntegerField("k (k-anonymity)", validators=[Optional(), NumberRange(min=1)])
    suppression = SelectField("Suppression", choices=[SelectChoice("", "as before"),
                                                      SelectChoice("generalise", "generalise, then suppress"),
                                                      SelectChoice("suppress", "suppress only")],
                              validators=[Optional()])
    rows = IntegerField("Rows to release from the sample", validators=[Optional(), NumberRange(min=1)],
                        description="A seeded subset of the sample; empty: all of it.")
    policy_text = TextAreaField("Other disclosure settings (YAML)", validators=[Optional(), Length(max=4000)],
                                description="e.g. 'l: 2' or 'remove_real_matches: true'.")
    schema_text = TextAreaField("Coding and hierarchies (YAML)", validators=[Optional(), Length(max=20000)],
                                description="e.g. 'columns: {age: {hierarchy: {band: 10}, top_code: 80}}'.")
    comment = TextAreaField("Why", validators=[Optional(), Length(max=2000)])


class RejectForm(FlaskForm):
    comment = TextAreaField("Reason", validators=[DataRequired("a rejection needs a reason for the requester"),
                                                  Length(max=2000)])


class CancelForm(FlaskForm):
    """Cancel a queued or running release (the CSRF token is its only field)."""


class UserForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    role = SelectField("Role", choices=[SelectChoice(r.value) for r in Role])
    password = PasswordField("Initial password", validators=[
        DataRequired(), Length(min=8, max=256, message="a password needs at least 8 characters (at most 256)")])
    email = StringField("Email (optional, for notifications)", validators=[Optional(), Length(max=254)])


class TokenForm(FlaskForm):
    label = StringField("Label", validators=[Optional(), Length(max=128)],
                        description="What the token is for, e.g. 'laptop CLI'.")


# ================================================================================================
# helpers
# ================================================================================================


def _user(s: Session) -> User:
    return s.merge(current_user._get_current_object(), load=False)  # type: ignore[attr-defined]


def _note_denial(reason: str, object_type: str | None = None, object_id: Any = None,
                 action: str = "authz.denied") -> None:
    """Queue an audit event for a refusal; written after the request, in its own transaction."""
    g.setdefault("denials", []).append((action, reason, object_type, object_id))


def _require(user: User, *roles: Role) -> None:
    if user.role not in {r.value for r in roles}:
        _note_denial(f"page needs role {'/'.join(r.value for r in roles)}")
        names = " or ".join(r.value for r in roles)
        raise Forbidden(f"this page is for the {names} role; you are {user.role}")


def _dataset_or_404(s: Session, user: User, dataset_id: int) -> Dataset:
    try:
        return releases.get_dataset(s, user, dataset_id)
    except NotFound:
        _note_denial(f"dataset {dataset_id} not visible", "dataset", dataset_id)
        raise


def _job_or_404(s: Session, user: User, job_id: int) -> ReleaseJob:
    try:
        return releases.get_job(s, user, job_id)
    except NotFound:
        _note_denial(f"release {job_id} not visible", "release", job_id)
        raise


def _apply_errors(form: FlaskForm, exc: ServiceError | PrivacyError, mapping: dict[str, str]) -> None:
    """Put a service error next to the field it is about (or on the form)."""
    name = mapping.get(exc.field or "", exc.field or "")
    field = getattr(form, name, None) if name else None
    if field is not None and hasattr(field, "errors"):
        errors = list(field.errors) if isinstance(field.errors, list | tuple) else []
        field.errors = [*errors, exc.message]
    else:
        form.form_errors.append(exc.message)


def _form_number(form: FlaskForm, name: str) -> float | None:
    """A privacy number typed in a form: parsed exactly, passed on as a float only if that is exact."""
    from privacy.budget import parse_number, to_fraction

    field = getattr(form, name)
    text = (field.data or "").strip()
    if not text:
        return None
    try:
        exact = parse_number(text, name)
    except PrivacyError as exc:
        field.errors = [*field.errors, exc.message]
        raise _FieldError from exc
    value = float(exact)
    if to_fraction(value, name) != exact:
        field.errors = [*field.errors, f"{name} has more digits than can be carried exactly; "
                                       "use at most 15 significant digits"]
        raise _FieldError
    return value


class _FieldError(Exception):
    """A form field failed a check; its message is already on the field."""


def _parse_options(form: RequestForm) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for number, line in enumerate((form.options.data or "").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        if not sep or not key.strip():
            form.options.errors = [*form.options.errors,
                                   f"line {number}: write 'name = value', e.g. 'bins = 16'"]
            raise _FieldError
        try:
            value = yaml.safe_load(raw.strip()) if raw.strip() else None
        except yaml.YAMLError:
            value = raw.strip()
        options[key.strip()] = value
    return options


def method_choices() -> list[dict[str, Any]]:
    """The installed methods with their one-line description and guarantee, DP first.

    A method whose module is not installed on this server is left out rather than
    breaking the form."""
    from privacy.synthesizers import method_names, synthesizer_class

    out = []
    for name in method_names():
        try:
            info = synthesizer_class(name).info()
        except ModuleNotFoundError as exc:
            if (exc.name or "").startswith("privacy.synthesizers"):
                log.debug("method %s is not installed: %s", name, exc)
                continue
            raise
        out.append(info)
    order = {"dp": 0, "data-free": 1, "non-dp": 2}
    return sorted(out, key=lambda i: (order.get(i["guarantee"], 3), i["name"]))


def _guarantee_label(info: dict[str, Any]) -> str:
    if info["guarantee"] == "dp":
        return "DP, zCDP" if info.get("zcdp") else "DP"
    return "not DP" if info["guarantee"] == "non-dp" else "data-free"


def _budget_view(status: Any) -> dict[str, Any]:
    """Spent / reserved / remaining of a dataset, as shares of the budget, under each accountant."""
    from privacy.accounting import zcdp_epsilon

    budget_eps = status.budget.epsilon

    def pct(value: Fraction) -> float:
        if budget_eps == 0:
            return 0.0
        return round(max(0.0, min(100.0, float(value / budget_eps * 100))), 2)

    spent = status.spent.epsilon if status.spent.is_dp else Fraction(0)
    reserved = status.reserved.epsilon if status.reserved.is_dp else Fraction(0)
    basic = {"spent": format_value(spent), "reserved": format_value(reserved),
             "remaining": format_value(status.remaining_epsilon),
             "spent_pct": pct(spent), "reserved_pct": pct(reserved), "remaining_pct": pct(status.remaining_epsilon),
             "delta_spent": format_value(status.spent.delta if status.spent.is_dp else Fraction(0)),
             "delta_reserved": format_value(status.reserved.delta if status.reserved.is_dp else Fraction(0)),
             "delta_remaining": format_value(status.remaining_delta)}
    zcdp = None
    if status.zcdp_remaining_epsilon is not None:
        rho_spent = status.spent.rho or Fraction(0)
        rho_all = rho_spent + (status.reserved.rho or Fraction(0))
        eps_spent = zcdp_epsilon(rho_spent, status.budget.delta) if rho_spent else Fraction(0)
        eps_all = status.zcdp_epsilon_committed or Fraction(0)
        if rho_all and not eps_all:
            eps_all = zcdp_epsilon(rho_all, status.budget.delta)
        eps_reserved = max(eps_all - eps_spent, Fraction(0))
        zcdp = {"spent": format_value(eps_spent), "reserved": format_value(eps_reserved),
                "remaining": format_value(status.zcdp_remaining_epsilon),
                "rho": format_value(rho_all),
                "spent_pct": pct(eps_spent), "reserved_pct": pct(eps_reserved),
                "remaining_pct": pct(status.zcdp_remaining_epsilon)}
    return {"epsilon": format_value(budget_eps), "delta": format_value(status.budget.delta), "basic": basic,
            "zcdp": zcdp, "guarantee": status.guarantee(), "formal": status.has_formal_guarantee,
            "non_dp_releases": status.non_dp_releases}


def _download_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=DOWNLOAD_SALT)


def download_link(job_id: int, user_id: int) -> str:
    """A link that downloads one release's bundle for one user, valid `download_link_seconds`."""
    token = _download_serializer().dumps({"job": job_id, "user": user_id})
    return url_for("pages.download", job_id=job_id, link=token)


def _storage_text(key: str | None) -> str | None:
    if not key:
        return None
    try:
        return get_storage(settings()).get_bytes(key).decode("utf-8", errors="replace")
    except (FileNotFoundError, KeyError, OSError):
        return None


def _bundle_statement(key: str | None) -> str | None:
    """privacy.md exactly as it is in the signed bundle."""
    if not key:
        return None
    try:
        data = get_storage(settings()).get_bytes(key)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return zf.read("privacy.md").decode("utf-8", errors="replace")
    except (FileNotFoundError, KeyError, OSError, zipfile.BadZipFile):
        return None


# ================================================================================================
# request hooks: audit refusals, security headers
# ================================================================================================


@pages.after_request
def _after(resp: Response) -> Response:
    denials = g.pop("denials", [])
    if denials:
        actor = current_user.username if current_user.is_authenticated else g.get("link_user", "anonymous")
        try:
            with write_session(settings()) as s:
                for action, reason, object_type, object_id in denials:
                    audit.record(s, action, actor=actor, object_type=object_type, object_id=object_id,
                                 detail={"reason": reason, "path": request.path, "method": request.method,
                                         "ip": request.remote_addr})
        except Exception:  # the refusal stands even if its audit write fails; say so in the log
            log.exception("could not audit a refusal on %s", request.path)
    resp.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


@pages.app_context_processor
def _globals() -> dict[str, Any]:
    return {"stage_label": lambda stage: STAGE_LABELS.get(stage or "", stage or ""), "logout_form": PostForm(),
            "STAFF": STAFF}


@pages.app_template_filter("exact")
def _exact(value: Any) -> str:
    """A stored exact value ('1/10', 'inf') in human form ('0.1', 'inf', '1/3 (0.333333)')."""
    if value is None:
        return "—"
    text = str(value)
    if text in ("inf", "Infinity"):
        return "∞ (not DP)"
    try:
        return format_value(Fraction(text))
    except (ValueError, ZeroDivisionError):
        return text


# ================================================================================================
# login
# ================================================================================================


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
                audit.record(s, "auth.login_throttled", actor=username[:64] or "anonymous",
                             detail={"ip": request.remote_addr, "retry_after": exc.retry_after})
            return _login_refused(form, exc)
        with write_session(settings()) as s:
            user = check_password(s, username, form.password.data or "")
            if user is None:
                audit.record(s, "auth.login_failed", actor=username[:64] or "anonymous",
                             detail={"ip": request.remote_addr})
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
    if (current_user.is_authenticated and current_user.must_change_password
            and request.endpoint not in ("pages.password", "pages.logout", "static")):
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
                ended = accounts.change_password(s, _user(s), form.current_password.data or "",
                                                 form.new_password.data or "", keep_sid=current_sid(),
                                                 settings=settings())
        except (InvalidRequest, ServiceError) as exc:
            _apply_errors(form, exc, {"current_password": "current_password", "new_password": "new_password",
                                      "password": "new_password"})
            return render_template("password.html", form=form, forced=forced), exc.status
        flash("Password changed." + (f" {ended} other session(s) ended." if ended else ""), "ok")
        return redirect(url_for("pages.index"))
    return render_template("password.html", form=form, forced=forced), 400 if form.errors else 200


# ================================================================================================
# dashboard
# ================================================================================================


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
            ctx["queue"] = [releases.job_view(s, user, j) for j in jobs
                            if j.status == JobStatus.awaiting_approval.value]
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


# ================================================================================================
# datasets
# ================================================================================================

_DATASET_FIELDS = {"name": "name", "file": "file", "schema": "schema_text", "epsilon_budget": "epsilon_budget",
                   "delta_budget": "delta_budget", "policy": "policy_text", "description": "description"}


@pages.route("/datasets/new", methods=["GET", "POST"])
@login_required
def dataset_new():  # type: ignore[no-untyped-def]
    cfg = settings()
    with session_scope(cfg) as s:
        _require(_user(s), Role.steward)
    form = DatasetForm()
    if request.method == "GET":
        form.epsilon_budget.data = cfg.default_epsilon_budget
        form.delta_budget.data = cfg.default_delta_budget
    if not form.validate_on_submit():
        return render_template("dataset_new.html", form=form), 400 if form.errors else 200
    upload = form.file.data
    schema_text = (form.schema_text.data or "").strip() or None
    if form.schema_file.data and getattr(form.schema_file.data, "filename", ""):
        schema_text = form.schema_file.data.read().decode("utf-8", errors="replace")
    storage = get_storage(cfg)
    ds_id: int | None = None
    try:
        with tempfile.TemporaryDirectory(dir=cfg.data_dir) as tmp:
            path = Path(tmp) / ("upload" + Path(upload.filename or "upload.csv").suffix.lower())
            sha256 = copy_hashed(upload.stream, path)
            try:
                with write_session(cfg) as s:
                    user = _user(s)
                    ds, issues = releases.register_dataset(
                        s, storage, user, upload_path=path, filename=upload.filename or "upload.csv",
                        name=(form.name.data or "").strip(), schema_text=schema_text,
                        epsilon_budget=form.epsilon_budget.data, delta_budget=form.delta_budget.data,
                        policy_text=(form.policy_text.data or "").strip() or None,
                        description=(form.description.data or "").strip() or None, settings=cfg,
                        file_sha256=sha256)
                    ds_id = ds.id
                    confirmed = ds.schema_confirmed
            except BaseException:
                if ds_id is not None:  # stored, then the transaction failed: leave nothing behind
                    storage.delete_prefix(f"datasets/{ds_id}")
                raise
    except (ServiceError, PrivacyError) as exc:
        if exc.status >= 500:
            raise
        _apply_errors(form, exc, _DATASET_FIELDS)
        return render_template("dataset_new.html", form=form), exc.status
    warnings = [i for i in issues if i["severity"] != "error"]
    if confirmed:
        flash(f"Dataset registered with its public schema ({len(warnings)} warning(s)).", "ok")
    else:
        flash("Dataset registered. A schema was proposed from the data: review it, change what is not public "
              "knowledge, and confirm it before releases can be requested.", "warn")
    return redirect(url_for("pages.dataset", dataset_id=ds_id))


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
            roles = [r for r, members in (("quasi-identifier", schema.quasi_identifiers),
                                          ("sensitive", schema.sensitive)) if name in members]
            if schema.target == name:
                roles.append("target")
            columns.append({"name": name, "kind": spec.kind, "domain": domain, "nullable": spec.nullable,
                            "integer": spec.integer, "roles": roles, "learned": list(spec.learned),
                            "identifier": spec.identifier if spec.kind == "identifier" else None,
                            "description": spec.description})
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
        if staff else [],
        "learned": schema.learned_columns if show_schema else {},
        "budget": _budget_view(summary.status),
        "history": summary.history,
        "history_own": summary.history_scope == "own",
        "jobs": jobs,
        "policy_yaml": policy_yaml,
        "staff": staff,
        "can_request": ds.schema_confirmed and user.role in (Role.analyst.value, Role.steward.value),
        "is_steward": user.role == Role.steward.value,
    }


def _render_dataset(dataset_id: int, status: int = 200, **forms: FlaskForm) -> tuple[str, int]:
    with session_scope(settings()) as s:
        user = _user(s)
        ds = _dataset_or_404(s, user, dataset_id)
        ctx = _dataset_context(s, user, ds)
    grant_form = forms.get("grant_form") or GrantForm()
    schema_form = forms.get("schema_form") or SchemaForm(
        schema_text=ctx["schema_yaml"] or "",
        base_version=str(ctx["schema_version"]["version"]) if ctx["schema_version"] else "")
    policy_form = forms.get("policy_form") or PolicyForm(policy_text=ctx["policy_yaml"])
    return render_template("dataset.html", grant_form=grant_form, schema_form=schema_form,
                           policy_form=policy_form, revoke_form=PostForm(), **ctx), status


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
            issues = releases.confirm_schema(s, user, ds, form.schema_text.data or "", get_storage(cfg),
                                             note=form.note.data or None, base_version=form.base_version.data)
            current = schema_versions.current_version(s, ds.id)
            assert current is not None
            previous = schema_versions.version_of(s, ds.id, current.version - 1)
            number = current.version
            change = schema_versions.describe_change(
                schema_versions.changed_parts(previous.schema, current.schema)) if previous is not None else ""
    except (InvalidRequest, Conflict, PrivacyError) as exc:
        _apply_errors(form, exc, {"schema": "schema_text", "note": "note", "base_version": "schema_text"})
        return _render_dataset(dataset_id, exc.status, schema_form=form)
    if any(note["code"] == "schema_unchanged" for note in issues):
        flash(f"The schema is the same as version {number}: no new version was recorded.", "warn")
    elif number == 1:
        flash(f"Public schema confirmed as version 1 ({len(issues)} note(s)). Releases can now be requested.", "ok")
    else:
        flash(f"Public schema version {number} recorded ({change}). Releases requested from now on use it; "
              "releases already requested keep the version they were requested under.", "ok")
    for note in issues:
        if note["code"] == "disclosure_preflight":
            flash(note["message"], "warn")
    return redirect(url_for("pages.dataset", dataset_id=dataset_id, _anchor="schema"))


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
            pending = releases.update_policy(s, user, ds, policy, (form.epsilon_budget.data or "").strip() or None,
                                             (form.delta_budget.data or "").strip() or None, settings=settings())
            pending_id = pending.id if pending is not None else None
            from privacy.policy import DatasetPolicy
            from privacy.schema import PublicSchema

            notes = releases.disclosure_issues(PublicSchema.from_dict(ds.public_schema),
                                               DatasetPolicy.from_dict(ds.policy))
    except yaml.YAMLError as exc:
        form.policy_text.errors = [*form.policy_text.errors, f"not valid YAML: {exc}"]
        return _render_dataset(dataset_id, 400, policy_form=form)
    except (InvalidRequest, Conflict, PrivacyError) as exc:
        _apply_errors(form, exc, {"policy": "policy_text", "epsilon_budget": "epsilon_budget",
                                  "delta_budget": "delta_budget"})
        return _render_dataset(dataset_id, exc.status, policy_form=form)
    if pending_id is not None:
        flash(f"Policy updated. The budget raise is above the ceiling: it takes effect when another steward "
              f"confirms change {pending_id}.", "ok")
    else:
        flash("Policy and budget updated.", "ok")
    for note in notes:
        flash(note["message"], "warn")
    return redirect(url_for("pages.dataset", dataset_id=dataset_id, _anchor="policy"))


# ================================================================================================
# release requests
# ================================================================================================

_REQUEST_FIELDS = {"epsilon": "epsilon", "delta": "delta", "rows": "rows", "target": "target", "method": "method",
                   "kind": "method", "options": "options", "rebalance": "rebalance", "comment": "comment",
                   "rho": "epsilon"}


def _request_context(s: Session, user: User, ds: Dataset, form: RequestForm) -> dict[str, Any]:
    from privacy.schema import PublicSchema

    schema = PublicSchema.from_dict(ds.public_schema)
    methods = method_choices()
    form.method.choices = [SelectChoice(m["name"], f"{m['name']} — {_guarantee_label(m)}") for m in methods]
    default_target = schema.target
    form.target.choices = [SelectChoice("", f"schema default ({default_target or 'none'})")] + [
        SelectChoice(c) for c in schema.synthesized_columns]
    form.rebalance.choices = [SelectChoice("", "no rebalancing")] + [SelectChoice(m) for m in releases.OVERSAMPLERS]
    summary = ledger_summary(s, ds)
    policy = ds.policy or {}
    return {"ds": {"id": ds.id, "name": ds.name, "confirmed": ds.schema_confirmed},
            "methods": methods, "budget": _budget_view(summary.status),
            "policy_privacy": policy.get("privacy", "dp-only"), "max_rows": settings().max_rows,
            "default_rows": releases.DEFAULT_ROWS}


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
        body = {"dataset": dataset_id, "method": form.method.data,
                "epsilon": _form_number(form, "epsilon"), "delta": _form_number(form, "delta") or 0,
                "rows": form.rows.data, "target": form.target.data or None,
                "options": _parse_options(form), "rebalance": form.rebalance.data or None,
                "comment": (form.comment.data or "").strip() or None}
    except _FieldError:
        return render_template("request.html", form=form, **ctx), 400
    try:
        req = releases.ReleaseRequest.parse({k: v for k, v in body.items() if v is not None})
        with write_session(cfg) as s:
            user = _user(s)
            job = releases.request_release(s, user, req, cfg)
            job_id = job.id
    except (ServiceError, PrivacyError) as exc:
        if exc.status >= 500 or isinstance(exc, NotFound) and exc.field == "dataset":
            raise
        _apply_errors(form, exc, _REQUEST_FIELDS)
        return render_template("request.html", form=form, **ctx), exc.status
    from workers.enqueue import enqueue_release

    try:
        enqueue_release(job_id, cfg)
    except Exception as exc:
        log.exception("could not enqueue job %s", job_id)
        from workers.jobs import fail_job

        fail_job(cfg, job_id, "queue_unavailable",
                 "the job queue is unavailable; nothing was charged. Try again shortly.", repr(exc))
        flash("The job queue is unavailable: the request was cancelled and nothing was charged.", "error")
    else:
        flash("Release requested: its cost is reserved in the ledger and a worker will pick it up.", "ok")
    return redirect(url_for("pages.release", job_id=job_id))


# ================================================================================================
# releases
# ================================================================================================


def _release_context(s: Session, user: User, job: ReleaseJob) -> dict[str, Any]:
    view = releases.job_view(s, user, job)
    staff = user.role in STAFF
    is_requester = job.requester_id == user.id
    awaiting = job.status == JobStatus.awaiting_approval.value
    has_report = bool(job.artifacts)
    can_dl = releases.can_download(user, job)
    report_visible = has_report and (staff or can_dl)
    if staff and job.status != JobStatus.approved.value:
        statement, statement_kind = _storage_text((job.artifacts or {}).get("privacy_draft.md")), "draft"
    elif can_dl:
        statement, statement_kind = _bundle_statement(job.bundle_key), "final"
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
        if not staff and not releases.can_download(user, job):
            _note_denial("report before approval", "release", job_id)
            raise Forbidden("the report is shown once a steward approves the release")
        name = "report.html" if staff or job.include_internal else "report_public.html"
        key = job.artifacts[name]
    data = get_storage(settings()).get_bytes(key)
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
            releases.approve(s, user, job, comment=(form.comment.data or "").strip() or None,
                             override=form.override.data or None, include_internal=bool(form.include_internal.data),
                             candidate=form.candidate.data)
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

        fail_candidate(cfg, cand_id, "queue_unavailable", "the job queue is unavailable; try again shortly",
                       repr(exc))
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
    flash("Release cancelled: " + ("its reservation was given back." if done["reservation_released"]
                                   else "its charge stays, the mechanism had read the data." if done["data_read"]
                                   else "nothing was charged."), "ok")
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
            raise InvalidRequest("this download link has expired; open the release page for a new one",
                                 code="link_expired") from None
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
    refused: ServiceError | None = None
    with write_session(cfg) as s:
        user = s.get(User, user_id)
        if user is None or not user.active:
            _note_denial("download link of a missing or disabled user", "release", job_id)
            raise NotFound(f"no release {job_id} (or it is not yours to see)")
        g.link_user = user.username
        job = _job_or_404(s, user, job_id)
        if not releases.can_download(user, job):
            audit.record(s, "authz.denied", actor=user, object_type="release", object_id=job.id,
                         detail={"action": "download", "status": job.status, "via": via})
            if job.status != JobStatus.approved.value:
                refused = Conflict(f"release {job_id} is {job.status}: it can be downloaded once a steward "
                                   "approves it", code="not_approved", field="release")
            else:
                refused = Forbidden("only the requester, a steward or an admin may download this bundle")
        else:
            if not job.bundle_key:
                releases.make_bundle(s, get_storage(cfg), cfg, job)
            key = job.bundle_key
            audit.record(s, "release.download", actor=user, object_type="release", object_id=job.id,
                         detail={"sha256": job.bundle_sha256, "via": via})
    if refused is not None:
        raise refused
    assert key is not None
    resp = send_file(get_storage(cfg).open(key), mimetype="application/zip", as_attachment=True,
                     download_name=f"synthgate-release-{job_id}.zip")
    resp.headers["Cache-Control"] = "no-store"
    return resp


# ================================================================================================
# audit
# ================================================================================================


@pages.get("/audit")
@login_required
def audit_page():  # type: ignore[no-untyped-def]
    args = request.args
    filters = {k: (args.get(k) or "").strip() for k in ("action", "actor", "object_type", "object_id")}
    try:
        limit = max(1, min(int(args.get("limit") or 200), 2000))
    except ValueError:
        limit = 200
    with session_scope(settings()) as s:
        user = _user(s)
        _require(user, Role.steward, Role.admin)
        q = select(AuditEvent).order_by(AuditEvent.id.desc())
        if filters["action"]:
            q = q.where(AuditEvent.action.like(filters["action"].replace("%", r"\%") + "%", escape="\\"))
        if filters["actor"]:
            q = q.where(AuditEvent.actor == filters["actor"])
        if filters["object_type"]:
            q = q.where(AuditEvent.object_type == filters["object_type"])
        if filters["object_id"]:
            q = q.where(AuditEvent.object_id == filters["object_id"])
        events = [{"id": e.id, "at": e.created_at.isoformat(timespec="seconds"), "actor": e.actor,
                   "action": e.action, "object_type": e.object_type, "object_id": e.object_id,
                   "detail": e.detail or {}, "hash": e.hash} for e in s.execute(q.limit(limit)).scalars()]
        actions = sorted(s.execute(select(AuditEvent.action).distinct()).scalars())
        object_types = sorted(t for t in s.execute(select(AuditEvent.object_type).distinct()).scalars() if t)
        check = audit.verify_anchored(s, get_storage(settings()), public_key_pem(settings()))
    return render_template("audit.html", events=events, filters=filters, limit=limit, actions=actions,
                           object_types=object_types, chain=check.to_dict())


# ================================================================================================
# admin and account
# ================================================================================================


def _token_rows(s: Session, user: User) -> list[dict[str, Any]]:
    names = {u.id: u.username for u in s.execute(select(User)).scalars()}
    return [accounts.token_view(t, names.get(t.user_id)) for t in accounts.visible_tokens(s, user)]


def _render_admin(status: int = 200, **extra: Any) -> tuple[str, int]:
    with session_scope(settings()) as s:
        user = _user(s)
        _require(user, Role.admin)
        users = [accounts.user_view(u) for u in accounts.list_users(s, user)]
        tokens = _token_rows(s, user)
    return render_template("admin.html", users=users, tokens=tokens,
                           user_form=extra.pop("user_form", None) or UserForm(),
                           token_form=extra.pop("token_form", None) or TokenForm(),
                           post_form=PostForm(), me_id=int(current_user.id), **extra), status


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
            created, change = accounts.create_account(s, user, (form.username.data or "").strip(),
                                                      form.role.data or "", form.password.data or "",
                                                      settings=settings(), email=form.email.data)
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
        flash(f"{name} becomes {change.payload['role']} when another steward confirms it "
              f"(on the Confirmations page).", "ok")
    else:
        flash(f"{name} is now {role}; their sessions were ended.", "ok")
    return redirect(url_for("pages.admin"))


def _render_confirmations(status: int = 200, **extra: Any) -> tuple[str, int]:
    with session_scope(settings()) as s:
        user = _user(s)
        _require(user, Role.steward, Role.admin)
        changes = [confirmations.change_view(c) for c in confirmations.pending(s, user)]
    return render_template("confirmations.html", changes=changes, post_form=PostForm(),
                           me=current_user.username, **extra), status


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
    return render_template("account.html", tokens=tokens, post_form=PostForm(),
                           token_form=extra.pop("token_form", None) or TokenForm(), **extra), status


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


__all__ = ["pages", "download_link", "method_choices"]
