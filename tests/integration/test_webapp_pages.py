"""The pages as the steward, the analyst and the admin use them (Flask test client on a real
SQLite file, storage directory and the real release pipeline).

Forms show their errors next to the field and change nothing when refused;
the dataset page shows the budget under both accountants, and hides a schema
proposed from the raw data from analysts; the release page asks for an
override only when the gate fails; the audit page filters and verifies.
"""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from core.db import dispose_engines, session_scope
from core.models import LedgerEntry, ReleaseJob
from tests.browser.support import (
    DEMO_CSV,
    DEMO_SCHEMA,
    finished_release,
    make_app_env,
    register_demo,
    release_method,
    request_release,
)

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = make_app_env(tmp_path_factory.mktemp("pages"))
    register_demo(env, epsilon_budget="3")
    env.job_id = finished_release(env)  # type: ignore[attr-defined]
    yield env
    dispose_engines()


def field_error(html: str, field: str) -> str:
    """The error text shown under a form field (empty if none)."""
    m = re.search(rf'<div class="field has-error" id="field-{field}">(.*?)</div>', html, re.S)
    if not m:
        return ""
    return " ".join(re.findall(r'class="field-error"[^>]*>([^<]*)<', m.group(1)))


def charges(env) -> tuple[int, int]:
    with session_scope(env.settings) as s:
        return (
            s.execute(select(func.count()).select_from(ReleaseJob)).scalar_one(),
            s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one(),
        )


# ------------------------------------------------------------------------------------- dashboards


def test_dashboards_per_role(env):
    steward = env.pages("steward").get("/").get_data(as_text=True)
    queue = steward.split('id="queue"', 1)[1].split("</section>", 1)[0]
    assert f"#{env.job_id}" in queue and "Review" in queue
    assert "Register a dataset" in steward and "Audit log" in steward

    analyst = env.pages("analyst").get("/").get_data(as_text=True)
    mine = analyst.split('id="mine"', 1)[1].split("</section>", 1)[0]
    assert f"#{env.job_id}" in mine and "awaiting approval" in mine
    assert "Datasets shared with you" in analyst and "adult" in analyst
    assert "Audit log" not in analyst and "Register a dataset" not in analyst

    other = env.pages("analyst2").get("/").get_data(as_text=True)
    assert "No dataset is shared with you yet" in other and f"#{env.job_id}" not in other

    admin = env.pages("admin").get("/").get_data(as_text=True)
    assert "Users" in admin and "5 users" in admin


def test_running_jobs_are_polled_live(env):
    job = request_release(env)
    analyst = env.pages("analyst")
    page = analyst.get(f"/releases/{job}").get_data(as_text=True)
    assert f'data-poll-release="/api/v1/releases/{job}"' in page
    assert 'id="job-progress"' in page and 'data-status="queued"' in page
    assert f'data-poll-row="/api/v1/releases/{job}"' in analyst.get("/").get_data(as_text=True)
    # the polled resource answers the session cookie with the job's progress
    data = analyst.get(f"/api/v1/releases/{job}").get_json()["release"]
    assert data["status"] == "queued" and data["progress"] == 0.0
    # a finished job is not polled
    assert "data-poll-release" not in analyst.get(f"/releases/{env.job_id}").get_data(as_text=True)


# --------------------------------------------------------------------------------------- datasets


def test_dataset_page_shows_budget_under_both_accountants_policy_ledger_and_grants(env):
    page = env.pages("steward").get("/datasets/1").get_data(as_text=True)
    assert "Basic composition" in page and "zCDP composition" in page
    ledger = env.api("steward", "GET", "/datasets/adult/ledger").get_json()["ledger"]
    remaining = re.search(r'id="remaining-basic">([^<]+)<', page).group(1)
    from fractions import Fraction

    from privacy.budget import format_value

    assert remaining == format_value(Fraction(ledger["remaining"]["basic"]["epsilon"]))
    if ledger["remaining"]["zcdp"] is not None:
        zcdp = re.search(r'id="remaining-zcdp">([^<]+)<', page).group(1)
        assert zcdp == format_value(Fraction(ledger["remaining"]["zcdp"]["epsilon"]))
    assert 'class="seg spent w-' in page
    assert "min fidelity" in page and "privacy" in page  # policy
    assert ">spend<" in page and ">reserve<" in page  # ledger history
    assert env.users["analyst"] in page.split('id="grants"', 1)[1]  # grants, with forms
    assert 'action="/datasets/1/grants"' in page
    assert "3000 rows" in page  # internal facts for staff

    analyst = env.pages("analyst").get("/datasets/1").get_data(as_text=True)
    assert "Basic composition" in analyst and 'id="grants"' not in analyst
    assert "3000 rows" not in analyst and "Change the policy" not in analyst


def test_registration_form_and_schema_confirmation(tmp_path):
    env = make_app_env(tmp_path)
    try:
        steward = env.pages("steward")
        # errors next to their fields, nothing stored
        resp = steward.post_form(
            "/datasets/new",
            "/datasets/new",
            {
                "name": "bad name!",
                "epsilon_budget": "3",
                "delta_budget": "1e-6",
                "file": (io.BytesIO(DEMO_CSV.read_bytes()), "adult.csv"),
            },
            content_type="multipart/form-data",
        )
        assert resp.status_code == 400 and "name must be" in field_error(resp.get_data(as_text=True), "name")
        resp = steward.post_form(
            "/datasets/new",
            "/datasets/new",
            {
                "name": "adult",
                "epsilon_budget": "lots",
                "delta_budget": "1e-6",
                "file": (io.BytesIO(DEMO_CSV.read_bytes()), "adult.csv"),
            },
            content_type="multipart/form-data",
        )
        assert "epsilon_budget must be a number" in field_error(resp.get_data(as_text=True), "epsilon_budget")
        resp = steward.post_form(
            "/datasets/new",
            "/datasets/new",
            {"name": "adult", "epsilon_budget": "3", "delta_budget": "1e-6", "file": (io.BytesIO(b""), "empty.csv")},
            content_type="multipart/form-data",
        )
        html = resp.get_data(as_text=True)
        assert resp.status_code in (400, 422) and "no data rows" in field_error(html, "file")
        # nothing of the upload stored but the steward's private staging (kept for the next submit of
        # the form; signed audit checkpoints live under audit/)
        assert not [
            p
            for p in env.settings.storage_dir.rglob("*")
            if p.is_file() and p.relative_to(env.settings.storage_dir).parts[0] not in ("audit", "staging")
        ]

        # without a schema: one is proposed from the data; releases wait for confirmation
        resp = steward.post_form(
            "/datasets/new",
            "/datasets/new",
            {
                "name": "adult",
                "epsilon_budget": "3",
                "delta_budget": "1e-6",
                "description": "census sample",
                "file": (io.BytesIO(DEMO_CSV.read_bytes()), "adult.csv"),
            },
            content_type="multipart/form-data",
        )
        assert resp.status_code == 302 and resp.headers["Location"] == "/datasets/1"
        env.api("steward", "POST", "/datasets/adult/grants", json={"user": env.users["analyst"]})
        page = steward.get("/datasets/1").get_data(as_text=True)
        assert "proposed from the raw data" in page and 'id="confirm-schema"' in page
        assert "Self-emp-not-inc" in page  # a category read from the data, shown to the steward only
        seen_by_analyst = env.pages("analyst").get("/datasets/1").get_data(as_text=True)
        assert "Self-emp-not-inc" not in seen_by_analyst and "not confirmed the public schema" in seen_by_analyst
        assert "Request a release" not in seen_by_analyst
        assert env.pages("analyst").get("/datasets/1/request").status_code == 200
        resp = env.pages("analyst").post_form(
            "/datasets/1/request",
            "/datasets/1/request",
            {"method": release_method(), "epsilon": "0.5", "delta": "1e-9"},
        )
        assert resp.status_code == 409 and "not confirmed" in resp.get_data(as_text=True)

        # one line naming a file on the server is text, not a file to read: refused, nothing confirmed
        resp = steward.post_form("/datasets/1", "/datasets/1/schema", {"schema_text": str(DEMO_SCHEMA)})
        assert resp.status_code in (400, 422) and "must be a mapping" in resp.get_data(as_text=True)
        assert "proposed from the raw data" in steward.get("/datasets/1").get_data(as_text=True)

        # a schema the table does not fit is refused next to the field
        resp = steward.post_form(
            "/datasets/1", "/datasets/1/schema", {"schema_text": "columns:\n  age: {kind: ordinal, min: 17, max: 90}\n"}
        )
        assert resp.status_code in (400, 422) and field_error(resp.get_data(as_text=True), "schema_text")
        # the documented schema is confirmed
        resp = steward.post_form("/datasets/1", "/datasets/1/schema", {"schema_text": DEMO_SCHEMA.read_text()})
        assert resp.status_code == 302
        page = env.pages("analyst").get("/datasets/1").get_data(as_text=True)
        assert "Request a release" in page and "Self-emp-not-inc" in page  # now public by declaration
        # duplicate names are refused next to the name
        resp = steward.post_form(
            "/datasets/new",
            "/datasets/new",
            {
                "name": "adult",
                "epsilon_budget": "3",
                "delta_budget": "1e-6",
                "schema_text": DEMO_SCHEMA.read_text(),
                "file": (io.BytesIO(DEMO_CSV.read_bytes()), "adult.csv"),
            },
            content_type="multipart/form-data",
        )
        assert resp.status_code == 409 and "already exists" in field_error(resp.get_data(as_text=True), "name")
    finally:
        dispose_engines()


def test_grant_and_policy_forms(env):
    steward = env.pages("steward")
    resp = steward.post_form("/datasets/1", "/datasets/1/grants", {"username": "no-such-user"})
    assert resp.status_code == 404 and "no user" in field_error(resp.get_data(as_text=True), "username")
    # a budget below what is committed is refused next to the field
    resp = steward.post_form(
        "/datasets/1", "/datasets/1/policy", {"policy_text": "privacy: dp-only\n", "epsilon_budget": "0.01"}
    )
    assert resp.status_code == 409
    assert "below what is already committed" in field_error(resp.get_data(as_text=True), "epsilon_budget")
    resp = steward.post_form("/datasets/1", "/datasets/1/policy", {"policy_text": "privacy: maybe\n"})
    assert resp.status_code in (400, 422) and field_error(resp.get_data(as_text=True), "policy_text")
    # grant then revoke
    resp = steward.post_form("/datasets/1", "/datasets/1/grants", {"username": env.users["analyst2"]})
    assert resp.status_code == 302
    assert env.pages("analyst2").get("/datasets/1").status_code == 200
    resp = steward.post_form("/datasets/1", f"/datasets/1/grants/{env.users['analyst2']}/revoke")
    assert resp.status_code == 302
    assert env.pages("analyst2").get("/datasets/1").status_code == 404


# ---------------------------------------------------------------------------------- request form


@pytest.mark.parametrize(
    "fields,field,message",
    [
        ({"epsilon": "lots"}, "epsilon", "epsilon must be a number"),
        ({"epsilon": "nan"}, "epsilon", "finite"),
        ({"epsilon": "0"}, "epsilon", "greater than 0"),
        ({"epsilon": "-1"}, "epsilon", ""),
        ({"epsilon": "0.123456789012345678901"}, "epsilon", "15 significant digits"),
        ({"epsilon": "50"}, "epsilon", "remaining"),
        ({"epsilon": "0.5", "delta": "1"}, "delta", "delta"),
        ({"epsilon": "0.5", "rows": "0"}, "rows", ""),
        ({"epsilon": "0.5", "rows": "999999999999"}, "rows", "at most"),
        ({"epsilon": "0.5", "options": "no equals sign"}, "options", "name = value"),
        ({"epsilon": "0.5", "options": "colour = blue"}, "options", "unknown option"),
        ({"epsilon": "0.5", "target": "not-a-column"}, "target", ""),
    ],
)
def test_request_form_shows_errors_next_to_the_field_and_charges_nothing(env, fields, field, message):
    analyst = env.pages("analyst")
    before = charges(env)
    data = {"method": release_method(), "delta": "1e-9", **fields}
    resp = analyst.post_form("/datasets/1/request", "/datasets/1/request", data)
    html = resp.get_data(as_text=True)
    assert 400 <= resp.status_code < 500, (resp.status_code, html[:300])
    error = field_error(html, field)
    assert error, f"no error shown next to {field}"
    assert message.lower() in error.lower(), error
    assert charges(env) == before
    # what was typed is kept
    if "epsilon" in fields:
        assert f'value="{fields["epsilon"]}"' in html


def test_request_form_lists_methods_with_guarantee_and_remaining_budget(env):
    page = env.pages("analyst").get("/datasets/1/request").get_data(as_text=True)
    from privacy.synthesizers import synthesizer_class

    info = synthesizer_class(release_method()).info()
    block = page.split(f'data-method="{info["name"]}"', 1)[1].split("</div>", 1)[0]
    assert "differentially private" in block and info["description"][:40] in block
    assert "Remaining: ε" in page and "Remaining: δ" in page
    # the method select carries the guarantee in each option's label
    assert re.search(rf'<option[^>]*value="{info["name"]}"[^>]*>{info["name"]} — DP', page)


def test_request_form_queues_a_charged_release(env):
    analyst = env.pages("analyst")
    before = charges(env)
    resp = analyst.post_form(
        "/datasets/1/request",
        "/datasets/1/request",
        {
            "method": release_method(),
            "epsilon": "0.1",
            "delta": "1e-9",
            "rows": "100",
            "comment": "for the model validation",
        },
    )
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/releases/")
    job = int(resp.headers["Location"].rsplit("/", 1)[1])
    view = env.api("analyst", "GET", f"/releases/{job}").get_json()["release"]
    assert view["status"] == "queued" and view["charge"] == "reserved" and view["epsilon"] == "1/10"
    assert view["options"] == {"comment": "for the model validation"}
    assert charges(env) == (before[0] + 1, before[1] + 1)


# --------------------------------------------------------------------------------- release page


def test_release_page_before_and_after_the_decision(tmp_path):
    env = make_app_env(tmp_path)
    try:
        register_demo(env)
        job = finished_release(env)
        gate = env.api("steward", "GET", f"/releases/{job}").get_json()["release"]["gate"]
        analyst = env.pages("analyst")
        page = analyst.get(f"/releases/{job}").get_data(as_text=True)
        # before the decision: the public part only (a DP output no real-row step touched): the public
        # statement draft, the guarantee and the synthetic-only report; never the gate
        assert 'id="gate"' not in page and 'id="public-preview"' in page and "public draft" in page
        assert 'id="fit-for-purpose"' not in page and 'id="download"' not in page
        early = analyst.get(f"/releases/{job}/report")
        assert early.status_code == 200 and b"Internal report" not in early.data

        steward = env.pages("steward")
        page = steward.get(f"/releases/{job}").get_data(as_text=True)
        assert 'id="gate"' in page and "report-frame" in page and "draft" in page
        for check in gate["checks"]:
            assert check["name"].replace("_", " ") in page
        report = steward.get(f"/releases/{job}/report")
        assert report.status_code == 200 and b"Internal report" in report.data
        if gate["overall"] == "fail":
            assert 'name="override"' in page
            resp = steward.post_form(f"/releases/{job}", f"/releases/{job}/approve", {"comment": "ok"})
            assert resp.status_code == 409
            assert "override with a written reason" in field_error(resp.get_data(as_text=True), "override")
            approve = {"comment": "ok", "override": "accepted for the pilot"}
        else:
            assert 'name="override"' not in page
            approve = {"comment": "ok"}
        # a rejection needs a reason
        resp = steward.post_form(f"/releases/{job}", f"/releases/{job}/reject", {"comment": ""})
        assert resp.status_code == 400 and field_error(resp.get_data(as_text=True), "comment")
        resp = steward.post_form(f"/releases/{job}", f"/releases/{job}/approve", approve)
        assert resp.status_code == 302
        page = steward.get(f"/releases/{job}").get_data(as_text=True)
        assert "approved" in page and "as in the bundle" in page and 'id="decide"' not in page
        if gate["overall"] == "fail":
            assert "accepted for the pilot" in page

        page = analyst.get(f"/releases/{job}").get_data(as_text=True)
        assert 'id="download"' in page and "report-frame" in page and 'id="gate"' not in page
        assert 'id="fit-for-purpose"' in page and 'id="public-preview"' not in page
        assert "accepted for the pilot" not in page
        public = analyst.get(f"/releases/{job}/report")
        assert public.status_code == 200 and b"Internal report" not in public.data
        assert b"Fit for the stated purpose?" in public.data
        assert "sandbox" in public.headers["Content-Security-Policy"]

        # a second decision is refused
        resp = steward.post_raw(f"/releases/{job}/reject", {"csrf_token": steward.csrf(), "comment": "changed mind"})
        assert resp.status_code == 409
    finally:
        dispose_engines()


def test_gate_thresholds_are_rounded_and_headers_keep_their_greek_letters(env):
    job = finished_release(env)
    with session_scope(env.settings) as s:
        row = s.get(ReleaseJob, job)
        gate = dict(row.gate)
        first = dict(gate["checks"][0], threshold=0.022176022176022176, direction="max")
        gate["checks"] = [first, *gate["checks"][1:]]
        row.gate = gate
        s.commit()
    page = env.pages("steward").get(f"/releases/{job}").get_data(as_text=True)
    assert "≤ 0.02218" in page and "0.022176022176022176" not in page
    # table headers are not uppercased: an ε, δ or ρ would read as E, Δ or P
    resp = env.pages("steward").get("/static/style.css")
    css = resp.get_data(as_text=True)
    resp.close()
    header_rule = re.search(r"thead th \{([^}]*)\}", css)
    assert header_rule and "uppercase" not in header_rule.group(1)


def test_rejection_keeps_the_charge(env):
    job = finished_release(env)
    steward = env.pages("steward")
    resp = steward.post_form(f"/releases/{job}", f"/releases/{job}/reject", {"comment": "purpose unclear"})
    assert resp.status_code == 302
    view = env.api("analyst", "GET", f"/releases/{job}").get_json()["release"]
    assert view["status"] == "rejected" and view["charge"] == "spent"
    assert view["decision"]["comment"] == "purpose unclear"
    page = env.pages("analyst").get(f"/releases/{job}").get_data(as_text=True)
    assert "purpose unclear" in page and 'id="download"' not in page


# ---------------------------------------------------------------------------------------- audit


def test_audit_page_filters_and_verifies(env):
    steward = env.pages("steward")
    page = steward.get("/audit").get_data(as_text=True)
    assert 'data-ok="1"' in page and "Hash chain verified" in page

    rows = re.findall(r"<code>([a-z_.]+)</code>", steward.get("/audit?action=release.").get_data(as_text=True))
    assert rows and all(a.startswith("release.") for a in rows)
    actor = env.users["analyst"]
    page = steward.get(f"/audit?actor={actor}").get_data(as_text=True)
    table = page.split('id="audit-events"', 1)[1]
    assert actor in table and env.users["steward"] not in table
    page = steward.get(f"/audit?object_type=release&object_id={env.job_id}").get_data(as_text=True)
    actions = re.findall(r"<code>([a-z_.]+)</code>", page)
    assert "release.request" in actions and "dataset.register" not in actions
    # filter text is data, not SQL
    assert steward.get("/audit?action=%25' OR 1=1 --").status_code == 200


# -------------------------------------------------------------------------------------- openapi


def test_openapi_document_covers_every_api_route(env):
    doc = env.app.test_client().get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = set()
    for rule in env.app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served
    # every $ref resolves, and errors share one schema
    text = str(doc)
    for ref in set(re.findall(r"#/components/(\w+)/(\w+)", text)):
        assert ref[1] in doc["components"][ref[0]], ref
    assert set(doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]) == {
        "code",
        "message",
        "field",
    }
    # the release request schema is the one the API validates with
    props = doc["components"]["schemas"]["ReleaseRequest"]["properties"]
    assert {"dataset", "method", "epsilon", "delta", "rows", "target", "options"} <= set(props)


def test_request_form_advice_follows_the_epsilon_posted_without_script(env):
    """The recommendation is rendered by the server too: a form sent back with an error shows the advice
    for the epsilon typed (the page's script updates it while typing)."""
    analyst = env.pages("analyst")
    page = analyst.get("/datasets/1/request").get_data(as_text=True)
    assert 'id="advice-method">mst<' in page and "give epsilon" in page
    resp = analyst.post_form(
        "/datasets/1/request", "/datasets/1/request", {"method": release_method(), "epsilon": "0.1", "rows": "0"}
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "epsilon 0.1 is small" in html
    advice = analyst.get("/datasets/1/request/advice?epsilon=3").get_json()["advice"]
    assert advice["epsilon"] == 3.0 and advice["method"] == "aim" and "not public" in advice["reason"]
    # the same advice in the API's dataset view, at the epsilon asked
    view = env.api("analyst", "GET", "/datasets/adult?epsilon=0.2").get_json()["dataset"]
    assert view["recommended"]["method"] == "mst" and "epsilon 0.2 is small" in view["recommended"]["reason"]
