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

Modules (one Blueprint, `pages`, defined in blueprint.py; the others register on it):

* forms.py: the WTForms forms;
* helpers.py: constants, access helpers, form parsing, budget and download views;
* hooks.py: request hooks (audit refusals, security headers), template globals;
* login_pages.py, dashboard.py, dataset_pages.py, request_pages.py,
  release_pages.py, audit_pages.py, admin_pages.py: the routes, by page;
  erasure_pages.py: erasing a dataset's raw data (the panel on the dataset page).
* schema_form.py and schema_editor.py: the per-column schema editor (rows, errors, its route).
"""

from __future__ import annotations

from webapp.pages import (  # noqa: F401  (importing them registers the routes and hooks)
    api_docs_pages,
    erasure_pages,
    hooks,
    schema_editor,
)
from webapp.pages.admin_pages import (
    account,
    admin,
    admin_create_user,
    admin_set_active,
    admin_set_role,
    confirmation_decide,
    confirmations_page,
    token_create,
    token_revoke,
)
from webapp.pages.audit_pages import audit_page
from webapp.pages.blueprint import pages
from webapp.pages.dashboard import index
from webapp.pages.dataset_pages import (
    dataset,
    dataset_grant,
    dataset_new,
    dataset_policy,
    dataset_revoke,
    dataset_schema,
)
from webapp.pages.forms import (
    ApproveForm,
    CancelForm,
    DatasetForm,
    GrantForm,
    LoginForm,
    PasswordChangeForm,
    PolicyForm,
    PostForm,
    RejectForm,
    RequestForm,
    RerunForm,
    RoleForm,
    SchemaForm,
    TokenForm,
    UserForm,
)
from webapp.pages.helpers import (
    ACTIVE_STATUSES,
    DOWNLOAD_SALT,
    PAGE_CSP,
    REPORT_CSP,
    STAFF,
    STAGE_LABELS,
    download_link,
    method_choices,
)
from webapp.pages.login_pages import login, logout, password, safe_next
from webapp.pages.release_pages import (
    candidate_report,
    download,
    release,
    release_approve,
    release_cancel,
    release_reject,
    release_report,
    release_rerun,
)
from webapp.pages.request_pages import request_form

__all__ = [
    "ACTIVE_STATUSES",
    "DOWNLOAD_SALT",
    "PAGE_CSP",
    "REPORT_CSP",
    "STAFF",
    "STAGE_LABELS",
    "ApproveForm",
    "CancelForm",
    "DatasetForm",
    "GrantForm",
    "LoginForm",
    "PasswordChangeForm",
    "PolicyForm",
    "PostForm",
    "RejectForm",
    "RequestForm",
    "RerunForm",
    "RoleForm",
    "SchemaForm",
    "TokenForm",
    "UserForm",
    "account",
    "admin",
    "admin_create_user",
    "admin_set_active",
    "admin_set_role",
    "audit_page",
    "candidate_report",
    "confirmation_decide",
    "confirmations_page",
    "dataset",
    "dataset_grant",
    "dataset_new",
    "dataset_policy",
    "dataset_revoke",
    "dataset_schema",
    "download",
    "download_link",
    "index",
    "login",
    "logout",
    "method_choices",
    "pages",
    "password",
    "release",
    "release_approve",
    "release_cancel",
    "release_reject",
    "release_report",
    "release_rerun",
    "request_form",
    "safe_next",
    "token_create",
    "token_revoke",
]
