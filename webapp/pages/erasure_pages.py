"""Erasing a dataset's raw data from its page (core/erasure.py): a steward or admin gives a reason and
types the dataset's name to confirm. The panel is templates/_erasure.html, included by dataset.html."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from core.db import write_session
from core.erasure import MAX_REASON, erase_raw_data
from core.errors import Conflict, InvalidRequest
from core.storage import get_storage
from webapp.auth import settings
from webapp.pages.blueprint import pages
from webapp.pages.dataset_pages import _render_dataset
from webapp.pages.helpers import STAFF, _apply_errors, _dataset_or_404, _note_denial, _user

__all__ = ["EraseForm", "dataset_erase"]


class EraseForm(FlaskForm):
    reason = TextAreaField(
        "Reason",
        validators=[
            DataRequired("give the reason for the erasure (for example the request it answers)"),
            Length(max=MAX_REASON),
        ],
        description="Kept in the audit log and shown to stewards and admins; analysts see only the date.",
    )
    confirm_name = StringField(
        "Type the dataset's name to confirm",
        validators=[DataRequired("type the dataset's name to confirm the erasure")],
    )


@pages.context_processor
def _erasure_form() -> dict[str, Any]:
    """`erasure_form()` in templates: the form being answered (with its errors) or a fresh one."""

    def erasure_form() -> EraseForm:
        form = g.get("erasure_form")
        return form if form is not None else EraseForm(formdata=None)

    return {"erasure_form": erasure_form}


@pages.post("/datasets/<int:dataset_id>/erase-raw")
@login_required
def dataset_erase(dataset_id: int):  # type: ignore[no-untyped-def]
    form = EraseForm()
    g.erasure_form = form
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _render_dataset(dataset_id, 400)
    cfg = settings()
    try:
        with write_session(cfg) as s:
            user = _user(s)
            ds = _dataset_or_404(s, user, dataset_id)
            if user.role not in STAFF:
                _note_denial("erasing raw data needs steward or admin", "dataset", dataset_id)
            elif (form.confirm_name.data or "").strip() != ds.name:
                raise InvalidRequest(
                    f"the name typed does not match: type {ds.name} exactly to confirm the erasure",
                    field="confirm_name",
                )
            done = erase_raw_data(s, user, ds, form.reason.data or "", storage=get_storage(cfg), settings=cfg)
    except (InvalidRequest, Conflict) as exc:
        _apply_errors(form, exc, {"reason": "reason", "confirm_name": "confirm_name", "dataset": ""})
        return _render_dataset(dataset_id, exc.status)
    stopped = len(done["cancelled_releases"])
    flash(
        f"The raw data of {done['dataset']} was erased"
        + (f"; {stopped} unfinished release(s) stopped" if stopped else "")
        + ". The ledger, the audit trail and approved releases remain.",
        "ok",
    )
    return redirect(url_for("pages.dataset", dataset_id=dataset_id, _anchor="erasure"))
