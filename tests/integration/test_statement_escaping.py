"""User-written text in the bundle's privacy.md is escaped: a steward's override reason and comment
cannot inject HTML or links into the Markdown an analyst (or the steward's reader) renders."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from tests.integration.live_support import register_penguins

pytestmark = [pytest.mark.integration]

INJECTION = "<img src=x onerror=alert(1)> [click](https://evil.example) <script>steal()</script>"


def test_override_and_comment_are_escaped_in_the_bundle_statement(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    svc.start_worker()
    register_penguins(svc, "penguins-md", epsilon_budget="3", delta_budget="1e-6")
    # a fidelity no release reaches: the gate fails, so the approval needs a written override
    r = svc.api("steward", "PUT", "/datasets/penguins-md/policy", json={"policy": {"min_fidelity": 0.999}})
    assert r.status_code == 200, r.text
    r = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": "penguins-md", "method": "dp-marginals", "epsilon": 0.5, "delta": 0, "rows": 100},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["release"]["id"]
    assert svc.wait_for("analyst", job_id)["status"] == "awaiting_approval", svc.worker_logs()
    gate = svc.api("steward", "GET", f"/releases/{job_id}").json()["release"]["gate"]
    assert gate["overall"] == "fail", gate
    # the steward includes the internal sections, so the steward's copy of the statement (with the
    # override) is the one in the bundle
    r = svc.api(
        "steward2",
        "POST",
        f"/releases/{job_id}/approve",
        json={"comment": INJECTION, "override": INJECTION, "include_internal": True},
    )
    assert r.status_code == 200, r.text
    bundle = svc.api("analyst", "GET", f"/releases/{job_id}/bundle")
    assert bundle.status_code == 200, bundle.text
    statement = zipfile.ZipFile(io.BytesIO(bundle.content)).read("privacy.md").decode()
    assert "onerror" in statement or "steal" in statement, "the override should be in this copy, escaped"
    line = next(ln for ln in statement.splitlines() if "onerror" in ln)
    # Markdown renders a backslash-escaped character as itself: no tag opens, no link forms, no URL autolinks
    assert not re.search(r"(?<!\\)<", line), line
    assert not re.search(r"(?<!\\)\]\(", line), line
    assert "https://" not in line, line
    # and rendered, the text reads as the steward wrote it
    assert re.sub(r"\\(.)", r"\1", line).count("onerror=alert(1)") == 1
    # the public comment is in the statement too (every copy), escaped the same way
    comment = next(ln for ln in statement.splitlines() if ln.startswith("The steward's comment: "))
    assert not re.search(r"(?<!\\)<", comment) and not re.search(r"(?<!\\)\]\(", comment), comment
    assert "https://" not in comment and "steal()" in re.sub(r"\\(.)", r"\1", comment)
