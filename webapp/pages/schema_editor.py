"""The per-column schema editor's route: the posted rows become a schema that goes through
`confirm_schema`, the same path (checks, versions, audit) as the YAML form."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask_login import login_required

from core.db import session_scope, write_session
from core.errors import Conflict, Forbidden, InvalidRequest
from core.models import Role
from privacy.errors import PrivacyError
from webapp.auth import settings
from webapp.pages import schema_form
from webapp.pages.blueprint import pages
from webapp.pages.dataset_pages import _confirm, _flash_confirmed, _render_dataset
from webapp.pages.forms import SchemaEditorForm
from webapp.pages.helpers import _dataset_or_404, _note_denial, _user


class _Refused(Exception):
    """The editor's rows do not make a valid schema; the errors are in the state's rows."""


@pages.post("/datasets/<int:dataset_id>/schema/columns")
@login_required
def dataset_schema_columns(dataset_id: int):  # type: ignore[no-untyped-def]
    form = SchemaEditorForm()
    with session_scope(settings()) as s:
        user = _user(s)
        ds = _dataset_or_404(s, user, dataset_id)
        is_steward = user.role == Role.steward.value
        document, suggestions = ds.public_schema, ds.schema_suggestions if is_steward else None
    if not form.validate_on_submit():
        state = schema_form.rows_from_form(request.form, document, suggestions)
        return _render_dataset(dataset_id, 400, editor=state, editor_form=form)
    schema, state = schema_form.schema_from_form(request.form, document, suggestions)
    try:
        with write_session(settings()) as s:
            user = _user(s)
            ds = _dataset_or_404(s, user, dataset_id)
            if user.role != Role.steward.value:
                _note_denial("confirm schema needs steward", "dataset", dataset_id)
                raise Forbidden(f"confirming or editing a schema is for the steward role; you are {user.role}")
            if ds.public_schema != document:
                raise Conflict(
                    "the schema was changed since you opened it; reload the page and make your change again",
                    field="schema",
                )
            if schema is None:
                raise _Refused
            issues, number, change = _confirm(s, user, ds, schema, form.note.data or None, form.base_version.data)
    except _Refused:
        return _render_dataset(dataset_id, 400, editor=state, editor_form=form)
    except (InvalidRequest, Conflict, PrivacyError) as exc:
        if exc.field == "note":
            form.note.errors = [*form.note.errors, exc.message]
        else:
            schema_form.place_message(exc.message, state)
        return _render_dataset(dataset_id, exc.status, editor=state, editor_form=form)
    _flash_confirmed(number, change, issues)
    return redirect(url_for("pages.dataset", dataset_id=dataset_id, _anchor="schema"))
