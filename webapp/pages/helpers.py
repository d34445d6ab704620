"""Shared by the page modules: constants, access helpers, form parsing, budget and download views."""

from __future__ import annotations

import io
import logging
import zipfile
from fractions import Fraction
from typing import Any

import yaml
from flask import current_app, g, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.orm import Session

from core import releases
from core.errors import Forbidden, NotFound, ServiceError
from core.models import Dataset, JobStatus, ReleaseJob, Role, User
from core.storage import get_storage
from privacy.budget import format_value
from privacy.errors import PrivacyError
from webapp.auth import settings
from webapp.pages.forms import RequestForm

log = logging.getLogger(__name__)


STAFF = (Role.steward.value, Role.admin.value)
ACTIVE_STATUSES = (JobStatus.queued.value, JobStatus.running.value)
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
# the report is HTML written by the evaluation library: no script, no network, no forms, sandboxed
REPORT_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
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


def _user(s: Session) -> User:
    return s.merge(current_user._get_current_object(), load=False)  # type: ignore[attr-defined]


def _note_denial(
    reason: str, object_type: str | None = None, object_id: Any = None, action: str = "authz.denied"
) -> None:
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
        field.errors = [
            *field.errors,
            f"{name} has more digits than can be carried exactly; use at most 15 significant digits",
        ]
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
            form.options.errors = [*form.options.errors, f"line {number}: write 'name = value', e.g. 'bins = 16'"]
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
    basic = {
        "spent": format_value(spent),
        "reserved": format_value(reserved),
        "remaining": format_value(status.remaining_epsilon),
        "spent_pct": pct(spent),
        "reserved_pct": pct(reserved),
        "remaining_pct": pct(status.remaining_epsilon),
        "delta_spent": format_value(status.spent.delta if status.spent.is_dp else Fraction(0)),
        "delta_reserved": format_value(status.reserved.delta if status.reserved.is_dp else Fraction(0)),
        "delta_remaining": format_value(status.remaining_delta),
    }
    zcdp = None
    if status.zcdp_remaining_epsilon is not None:
        rho_spent = status.spent.rho or Fraction(0)
        rho_all = rho_spent + (status.reserved.rho or Fraction(0))
        eps_spent = zcdp_epsilon(rho_spent, status.budget.delta) if rho_spent else Fraction(0)
        eps_all = status.zcdp_epsilon_committed or Fraction(0)
        if rho_all and not eps_all:
            eps_all = zcdp_epsilon(rho_all, status.budget.delta)
        eps_reserved = max(eps_all - eps_spent, Fraction(0))
        zcdp = {
            "spent": format_value(eps_spent),
            "reserved": format_value(eps_reserved),
            "remaining": format_value(status.zcdp_remaining_epsilon),
            "rho": format_value(rho_all),
            "spent_pct": pct(eps_spent),
            "reserved_pct": pct(eps_reserved),
            "remaining_pct": pct(status.zcdp_remaining_epsilon),
        }
    return {
        "epsilon": format_value(budget_eps),
        "delta": format_value(status.budget.delta),
        "basic": basic,
        "zcdp": zcdp,
        "guarantee": status.guarantee(),
        "formal": status.has_formal_guarantee,
        "non_dp_releases": status.non_dp_releases,
    }


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
