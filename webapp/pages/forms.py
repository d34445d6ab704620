"""The WTForms forms of the pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
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

from core.models import Role


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired()])


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    new_password = PasswordField(
        "New password",
        validators=[DataRequired(), Length(max=256)],
        description="At least 8 characters; a phrase of unrelated words is best. Common passwords are refused.",
    )
    confirm = PasswordField(
        "New password again",
        validators=[
            DataRequired(),
            EqualTo("new_password", message="the two new passwords differ; type the same one twice"),
        ],
    )


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(r.value) for r in Role])


class PostForm(FlaskForm):
    """A form with nothing but its CSRF token (logout, revoke, disable...)."""


class DatasetForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired(), Length(max=128)],
        description="Letters, digits, '.', '_' or '-'; used in the CLI and the API.",
    )
    # required unless a file kept from an earlier submit of the form is named by `staged` (checked by the page)
    file = FileField("Table (CSV or Parquet)", validators=[Optional()])
    staged = HiddenField()
    schema_text = TextAreaField(
        "Public schema (YAML)",
        validators=[Optional()],
        description="Leave empty to have a schema proposed from the data; releases open once you confirm it.",
    )
    schema_file = FileField("…or a schema file", validators=[Optional()])
    epsilon_budget = StringField("Epsilon budget", validators=[DataRequired()])
    delta_budget = StringField("Delta budget", validators=[DataRequired()])
    policy_text = TextAreaField(
        "Policy (YAML)",
        validators=[Optional()],
        description="e.g. 'privacy: dp-only' and the gate thresholds; empty keeps the defaults.",
    )
    description = TextAreaField("Description", validators=[Optional(), Length(max=4000)])


class SchemaForm(FlaskForm):
    schema_text = TextAreaField("Public schema (YAML)", validators=[DataRequired()])
    note = TextAreaField(
        "What changed and why",
        validators=[Optional(), Length(max=2000)],
        description="Stewards and admins see it in the history; analysts do not.",
    )
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
    options = TextAreaField(
        "Method options", validators=[Optional(), Length(max=4000)], description="One per line: name = value."
    )
    comment = TextAreaField(
        "What is this release for?",
        validators=[Optional(), Length(max=2000)],
        description="The purpose: the steward reviews the release for it, and the approved bundle says whether "
        "the release is fit for it.",
    )


class ApproveForm(FlaskForm):
    comment = TextAreaField("Comment", validators=[Optional(), Length(max=2000)])
    override = TextAreaField(
        "Override reason",
        validators=[Optional(), Length(max=2000)],
        description="Required because the release gate failed.",
    )
    include_internal = BooleanField("Put the internal report sections (computed on real rows) in the bundle")
    candidate = IntegerField("Candidate to release", validators=[Optional(), NumberRange(min=0)])


class RerunForm(FlaskForm):
    """Re-run post-processing on the release's stored sample (core/candidates.py): nothing is charged."""

    k = IntegerField("k (k-anonymity)", validators=[Optional(), NumberRange(min=1)])
    suppression = SelectField(
        "Suppression",
        choices=[
            SelectChoice("", "as before"),
            SelectChoice("generalise", "generalise, then suppress"),
            SelectChoice("suppress", "suppress only"),
        ],
        validators=[Optional()],
    )
    rows = IntegerField(
        "Rows to release from the sample",
        validators=[Optional(), NumberRange(min=1)],
        description="A seeded subset of the sample; empty: all of it.",
    )
    policy_text = TextAreaField(
        "Other disclosure settings (YAML)",
        validators=[Optional(), Length(max=4000)],
        description="e.g. 'l: 2' or 'remove_real_matches: true'.",
    )
    schema_text = TextAreaField(
        "Coding and hierarchies (YAML)",
        validators=[Optional(), Length(max=20000)],
        description="e.g. 'columns: {age: {hierarchy: {band: 10}, top_code: 80}}'.",
    )
    comment = TextAreaField("Why", validators=[Optional(), Length(max=2000)])


class RejectForm(FlaskForm):
    comment = TextAreaField(
        "Reason", validators=[DataRequired("a rejection needs a reason for the requester"), Length(max=2000)]
    )


class CancelForm(FlaskForm):
    """Cancel a queued or running release (the CSRF token is its only field)."""


class UserForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    role = SelectField("Role", choices=[SelectChoice(r.value) for r in Role])
    password = PasswordField(
        "Initial password",
        validators=[
            DataRequired(),
            Length(min=8, max=256, message="a password needs at least 8 characters (at most 256)"),
        ],
    )
    email = StringField("Email (optional, for notifications)", validators=[Optional(), Length(max=254)])


class TokenForm(FlaskForm):
    label = StringField(
        "Label", validators=[Optional(), Length(max=128)], description="What the token is for, e.g. 'laptop CLI'."
    )


class SchemaEditorForm(FlaskForm):
    """The per-column schema editor; its rows (col-<i>-kind, ...) are read by webapp/pages/schema_form.py."""

    constraints = TextAreaField(
        "Constraints (YAML list)",
        validators=[Optional(), Length(max=20000)],
        description="Public rules between columns, one per item, e.g. '- start <= end'.",
    )
    note = TextAreaField(
        "What changed and why",
        validators=[Optional(), Length(max=2000)],
        description="Stewards and admins see it in the history; analysts do not.",
    )
    base_version = HiddenField()
