"""No secret and no unpaid value in anything an analyst reaches.

One real service (gunicorn + a Celery worker, embedded backend) runs a release of
every kind with every method of the catalogue plus dp-statistics (and a DP
release rebalanced afterwards) on the penguins table. A second user, a steward,
approves each one (over a failing gate with a written override when needed).
Then everything the requesting analyst can reach is collected and scanned:

* the bundle, unzipped: every file;
* the analyst's API views: ``GET /releases/<id>``, ``GET /releases``, the
  report endpoint (JSON and HTML), the dataset and its ledger view;
* the analyst's HTML pages: the release page, its report frame, the dashboard
  and the dataset page (logged in through the login form);
* every progress message the analyst saw while the release ran.

What is looked for, read from the database (never from an analyst view):

* the job's noise seed in any encoding: decimal of the seed and of the seed
  modulo 2^k for every k from 16 to 64 (plain, and grouped by thousands with
  ``,``, ``_`` or a space, as a report formats numbers), and the same numbers in
  hexadecimal (with or without ``0x``, either case);
* the exact number of rows the mechanism read: the training rows of the job
  (the split's ``train_rows``; for dp-statistics, which reads every row, the
  table's 344 rows), and the names ``train_rows`` / ``holdout_rows`` /
  ``real_rows`` that would label the split's sizes;
* the steward's override reason, which is for the steward only;
* the storage keys of the job's stored sample (``sample.parquet``, ``sample.json``),
  kept privately for re-runs of post-processing, and of the re-runs' candidates.

How: a number matches only as a whole token: not preceded by a letter, digit,
``_``, ``+``, ``/`` or ``.``, and not followed by a letter, digit, ``_``, ``+``,
``/`` or ``.<digit>`` (so ``0.12345`` and the middle of a hash or of base64
do not match 12345). Inline images (``data:...;base64,...``) are cut out first.
Structured artifacts (JSON, Markdown, HTML, API bodies, progress messages) are
scanned for every encoding of at least 6 characters; an encoding of fewer than 6
characters (only seed mod 2^16..2^19 can be that short, and at most 16..19 bits)
is flagged there only when the word "seed" comes within 40 characters before
it, since short numbers (counts, bounds) appear in any report. Data tables
(``data.csv``, and ``data.parquet`` read back as CSV text) are scanned for the
encodings of at least 6 characters only: cells are whole tokens, and shorter
numbers are ordinary values. The row count (about 275 of the 344 penguins for a
training part) is scanned as a whole token in every structured artifact except
the evaluation report (its JSON and HTML, from the bundle, the API or the page
frame), where the synthetic table's own category counts can be any number: there
it is flagged when "row", "train", "holdout", "real" or "member" comes within
40 characters before it. The same rule holds everywhere when the count equals a
number of the public schema (a bound such as 250), which the schema shows anyway.
It is not scanned in the data tables.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from fractions import Fraction
from html import unescape
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from core.db import session_scope
from core.models import ReleaseJob
from tests.integration.release_support import assert_csv_reads_back_as_parquet

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "tests" / "data" / "penguins"
# every whole number the public schema declares (bounds, codes): an analyst sees these in any case
PUBLIC_NUMBERS = {int(n) for n in re.findall(r"(?<![\w.])\d+(?![\w.])", (PENGUINS / "schema.yaml").read_text())}
OVERRIDE = "steward-only-override-7c1e"
ROWS = 500

DP_METHODS: dict[str, dict[str, Any]] = {
    "mst": {},
    "aim": {"rounds": 9},
    "mst-smartnoise": {"bins": 8},
    "aim-smartnoise": {"rounds": 9, "bins": 8},
    "mwem": {"iterations": 6, "mult_weights_iterations": 5, "bins": 8, "max_cells": 2000},
    "pacsynth": {},
    "dpctgan": {"epochs": 1, "batch_size": 32, "sigma": 8},  # one epoch fits epsilon 1 on 344 rows
    "patectgan": {"epochs": 1},
    "dp-copula": {},
    "dp-marginals": {},
}
NON_DP_METHODS: dict[str, dict[str, Any]] = {
    "gaussian-copula": {},
    "ctgan": {"epochs": 1},
    "tvae": {"epochs": 1},
    "copulagan": {"epochs": 1},
    "smote": {},
    "borderline-smote": {},
    "adasyn": {},
    "smotenc": {},
}
DATA_FREE: dict[str, dict[str, Any]] = {
    "scenario": {"n_features": 4, "n_informative": 2},
    "spec": {
        "spec": {
            "columns": {
                "age": {"distribution": "norm", "loc": 40, "scale": 12, "min": 17, "max": 90, "integer": True},
                "region": {"values": ["north", "south"], "probabilities": [0.6, 0.4]},
                # labels a spreadsheet reads as numbers: data.csv must keep them as they are
                "label": {"values": ["-1", "+1"], "probabilities": [0.5, 0.5]},
            }
        }
    },
}

_IMAGES = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+")
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def seed_encodings(seed: int) -> set[str]:
    """The seed and its residues modulo 2^k (k = 16..64), in decimal and hexadecimal."""
    values = {seed} | {seed % (2**k) for k in range(16, 65)}
    out: set[str] = set()
    for v in values:
        out |= {str(v), f"{v:,}", f"{v:_}", f"{v:,}".replace(",", " "), f"{v:x}", f"{v:X}", f"0x{v:x}", f"0x{v:X}"}
    return out


def _token(text: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w+/.]){re.escape(text)}(?![\w+/]|\.\d)")


_COUNT_LABELS = ("row", "train", "holdout", "real", "member")


def find_hits(text: str, seed: int, train_rows: int | None, *, table: bool, report: bool = False) -> list[str]:
    """What of the secrets appears in one artifact's text (see the module docstring)."""
    text = _IMAGES.sub(" ", text)
    hits = []
    for enc in seed_encodings(seed):
        pattern = _token(enc)
        if len(re.sub(r"[,_ ]", "", enc)) >= 6:  # digits (or hex digits), not separators
            if pattern.search(text):
                hits.append(f"seed encoding {enc}")
        elif not table:
            for m in pattern.finditer(text):
                if "seed" in text[max(0, m.start() - 40) : m.start()].lower():
                    hits.append(f"seed encoding {enc} next to 'seed'")
                    break
    if not table:
        for m in _token(str(train_rows)).finditer(text) if train_rows is not None else ():
            before = text[max(0, m.start() - 40) : m.start()].lower()
            if not report or any(label in before for label in _COUNT_LABELS):
                hits.append(f"row count {train_rows}")
                break
        for label in ("train_rows", "holdout_rows", "real_rows"):
            if re.search(rf"(?<!\w){label}(?!\w)", text):  # a key of its own, not model_train_rows
                hits.append(f"label {label}")
        if OVERRIDE in text:
            hits.append("the steward's override reason")
    for key in ("sample.parquet", "sample.json", "/candidates/"):
        if key in text:
            hits.append(f"the private storage key {key}")
    return hits


# one dataset pays for every method (a budget above the default ceiling, as a second steward would confirm),
# and the analyst polls every job several times a second to see each progress message (above the default
# per-account API rate)
SCAN_SETTINGS = {
    "budget_max_epsilon": "1000",
    "budget_confirm_epsilon": "1000",
    "budget_confirm_delta": "1e-3",
    "api_limit_account": "100000 per minute",
}


def _register(svc, name: str, policy: dict | None = None) -> str:
    with open(PENGUINS / "penguins.csv", "rb") as fh:
        r = svc.api(
            "steward",
            "POST",
            "/datasets",
            files={"file": ("penguins.csv", fh)},
            data={
                "name": name,
                "schema": (PENGUINS / "schema.yaml").read_text(),
                "epsilon_budget": "1000",
                "delta_budget": "0.001",
            },
        )
    assert r.status_code == 201, r.text
    if policy:
        r = svc.api("steward", "PUT", f"/datasets/{name}/policy", json={"policy": policy})
        assert r.status_code == 200, r.text
    r = svc.api("steward", "POST", f"/datasets/{name}/grants", json={"user": svc.tokens["analyst:username"]})
    assert r.status_code == 201, r.text
    return name


def _login(svc, user: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{svc.url}/login", timeout=60).text
    m = _CSRF.search(page)
    assert m, "no CSRF token on the login page"
    r = session.post(
        f"{svc.url}/login",
        timeout=60,
        data={
            "csrf_token": unescape(m.group(1) or m.group(2)),
            "username": svc.tokens[f"{user}:username"],
            "password": "correct horse battery",
        },
    )
    assert r.status_code == 200 and "/login" not in r.url, r.text[:500]
    return session


def _bundle_texts(content: bytes) -> dict[str, tuple[str, bool]]:
    """name -> (text, is a data table) for every file of the bundle."""
    out: dict[str, tuple[str, bool]] = {}
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        for name in zf.namelist():
            raw = zf.read(name)
            if name.endswith(".parquet"):
                df = pd.read_parquet(io.BytesIO(raw))
                out[name] = (df.to_csv(index=False), True)
            else:
                out[name] = (raw.decode("utf-8", errors="replace"), name.startswith("data."))
    return out


@pytest.mark.timeout(2700)
def test_no_seed_or_row_count_reaches_the_analyst(service_factory):
    svc = service_factory("embedded", **SCAN_SETTINGS)
    svc.start_web()
    svc.start_worker(concurrency=2)
    suffix = svc.tokens["steward:username"].rsplit("-", 1)[-1]
    # a fidelity no release reaches: every gate that scores fidelity fails, so the steward approves
    # with a written override, which must stay with the steward
    dp_name = _register(svc, f"penguins-dp-{suffix}", {"min_fidelity": 0.999})
    open_name = _register(svc, f"penguins-open-{suffix}", {"privacy": "allow-non-dp", "min_fidelity": 0.999})

    requests_: list[dict[str, Any]] = [
        {
            "dataset": dp_name,
            "method": "dp-statistics",
            "epsilon": 1.0,
            "options": {"by": ["species"], "columns": ["body_mass_g", "flipper_length_mm"]},
        },
        {"dataset": dp_name, "method": "mst", "epsilon": 1.0, "delta": 1e-6, "rows": ROWS, "rebalance": "smote"},
    ]
    for method, options in DP_METHODS.items():
        requests_.append(
            {"dataset": dp_name, "method": method, "epsilon": 1.0, "delta": 1e-6, "rows": ROWS, "options": options}
        )
    for method, options in {**NON_DP_METHODS, **DATA_FREE}.items():
        requests_.append({"dataset": open_name, "method": method, "rows": ROWS, "options": options})

    jobs: dict[int, dict[str, Any]] = {}
    for body in requests_:
        r = svc.api("analyst", "POST", "/releases", json=body)
        assert r.status_code == 202, (body["method"], r.text)
        jobs[r.json()["release"]["id"]] = {"body": body, "messages": set()}

    # follow every job as the analyst, keeping each progress message seen
    import time

    deadline = time.time() + 2400
    pending = set(jobs)
    while pending and time.time() < deadline:
        for job_id in list(pending):
            view = svc.api("analyst", "GET", f"/releases/{job_id}").json()["release"]
            jobs[job_id]["messages"].add(f"{view.get('stage')} | {view.get('message')}")
            if view["status"] in ("awaiting_approval", "failed"):
                pending.discard(job_id)
        time.sleep(0.2)
    assert not pending, f"releases {sorted(pending)} did not finish\n{svc.worker_logs()}"

    overridden = 0
    for job_id, job in jobs.items():
        steward_view = svc.api("steward", "GET", f"/releases/{job_id}").json()["release"]
        assert steward_view["status"] == "awaiting_approval", (job["body"]["method"], steward_view.get("internal"))
        body = {"comment": "fit for purpose"}
        if steward_view["gate"]["overall"] == "fail":
            body["override"] = OVERRIDE
            overridden += 1
        r = svc.api("steward2", "POST", f"/releases/{job_id}/approve", json=body)
        assert r.status_code == 200, r.text

    assert overridden >= len(DP_METHODS)  # the override check below has something to find
    web = _login(svc, "analyst")
    shared = {
        "api: releases": svc.api("analyst", "GET", "/releases").text,
        "api: dataset dp": svc.api("analyst", "GET", f"/datasets/{dp_name}").text,
        "api: dataset open": svc.api("analyst", "GET", f"/datasets/{open_name}").text,
        "api: ledger dp": svc.api("analyst", "GET", f"/datasets/{dp_name}/ledger").text,
        "api: ledger open": svc.api("analyst", "GET", f"/datasets/{open_name}/ledger").text,
        "page: dashboard": web.get(f"{svc.url}/", timeout=60).text,
    }
    failures: list[str] = []
    for job_id, job in jobs.items():
        with session_scope(svc.settings) as s:
            row = s.get(ReleaseJob, job_id)
            seed, split = int(row.seed), dict(row.split or {})
            ds_id = row.dataset_id
        train_rows = split.get("train_rows") if job["body"]["method"] != "dp-statistics" else 344
        bundle = svc.api("analyst", "GET", f"/releases/{job_id}/bundle")
        assert bundle.status_code == 200, bundle.text
        assert_csv_reads_back_as_parquet(bundle.content)
        artifacts: dict[str, tuple[str, bool]] = {
            f"bundle/{name}": value for name, value in _bundle_texts(bundle.content).items()
        }
        artifacts.update({name: (text, False) for name, text in shared.items()})
        artifacts["api: release"] = (svc.api("analyst", "GET", f"/releases/{job_id}").text, False)
        for fmt in ("json", "html"):
            r = svc.api("analyst", "GET", f"/releases/{job_id}/report", params={"format": fmt})
            assert r.status_code == 200, r.text
            artifacts[f"api: report {fmt}"] = (r.text, False)
        for page in (f"/releases/{job_id}", f"/releases/{job_id}/report", f"/datasets/{ds_id}"):
            r = web.get(svc.url + page, timeout=60)
            assert r.status_code == 200, (page, r.status_code)
            artifacts[f"page: {page}"] = (r.text, False)
        artifacts["progress messages"] = ("\n".join(sorted(job["messages"])), False)
        # a training count that equals a number of the public schema (a bound such as flipper_length_mm's
        # max of 250) is found as a whole token wherever the schema is shown: there it is looked for next
        # to a label, as in a report
        public = train_rows in PUBLIC_NUMBERS
        for where, (text, table) in artifacts.items():
            for hit in find_hits(text, seed, train_rows, table=table, report=public or "report" in where):
                failures.append(f"{job['body']['method']} (release {job_id}): {hit} in {where}")
    assert not failures, "\n".join(failures)


@pytest.mark.timeout(900)
def test_the_public_part_before_approval_and_the_fit_for_purpose_say_nothing_of_the_rows(service_factory):
    """Before the decision the requester sees the public part of a release (core/release_public.py); after
    it, the "Fit for the stated purpose?" answer. Neither carries the seed, the training-row count or the
    override reason; the summaries of an output that real rows shaped, or of a non-DP one, wait for the
    decision, and so does the count of rows removed because of real rows."""
    from core.bundle import verify_bundle
    from core.storage import get_storage

    svc = service_factory("embedded", **SCAN_SETTINGS)
    svc.start_web()
    svc.start_worker(concurrency=2)
    suffix = svc.tokens["steward:username"].rsplit("-", 1)[-1]
    dp_name = _register(svc, f"penguins-pre-{suffix}", {"min_fidelity": 0.999})
    filtered_name = _register(svc, f"penguins-filt-{suffix}", {"remove_real_matches": True})
    open_name = _register(svc, f"penguins-nondp-{suffix}", {"privacy": "allow-non-dp"})
    purpose = "compare flipper lengths across islands"
    cases = {
        "dp": {"dataset": dp_name, "method": "mst", "epsilon": 1.0, "delta": 1e-6, "rows": ROWS},
        "filtered": {"dataset": filtered_name, "method": "mst", "epsilon": 1.0, "delta": 1e-6, "rows": ROWS},
        "non-dp": {"dataset": open_name, "method": "gaussian-copula", "rows": ROWS},
        "statistics": {
            "dataset": dp_name,
            "method": "dp-statistics",
            "epsilon": 1.0,
            "options": {"by": ["species"], "columns": ["body_mass_g"]},
        },
        "data-free": {"dataset": open_name, "method": "spec", "rows": ROWS, "options": DATA_FREE["spec"]},
    }
    jobs: dict[str, int] = {}
    for case, body in cases.items():
        r = svc.api("analyst", "POST", "/releases", json={**body, "purpose": purpose})
        assert r.status_code == 202, (case, r.text)
        jobs[case] = r.json()["release"]["id"]
    for case, job_id in jobs.items():
        done = svc.wait_for("analyst", job_id, timeout=600)
        assert done["status"] == "awaiting_approval", (case, done)
    web = _login(svc, "analyst")
    failures: list[str] = []

    def scan(case: str, job_id: int, texts: dict[str, str]) -> None:
        with session_scope(svc.settings) as s:
            row = s.get(ReleaseJob, job_id)
            seed, train_rows = int(row.seed), dict(row.split or {}).get("train_rows")
        if case == "statistics":
            train_rows = 344  # every row is measured
        assert train_rows or case == "data-free", (case, job_id)
        for where, text in texts.items():
            public = train_rows in PUBLIC_NUMBERS  # as in the test above: then looked for next to a label
            for hit in find_hits(text, seed, train_rows, table=False, report=public or "report" in where):
                failures.append(f"{case} (release {job_id}): {hit} in {where}")

    for case, job_id in jobs.items():
        view = svc.api("analyst", "GET", f"/releases/{job_id}").json()["release"]
        public = view["public"]
        assert public is not None and "Privacy parameters" in public["statement"], (case, view)
        assert "gate" not in view and view["purpose"] == purpose and view["fit_for_purpose"] is None
        texts = {
            "api: release (before approval)": svc.api("analyst", "GET", f"/releases/{job_id}").text,
            "page: release (before approval)": web.get(f"{svc.url}/releases/{job_id}", timeout=60).text,
        }
        page_report = web.get(f"{svc.url}/releases/{job_id}/report", timeout=60)
        api_report = svc.api("analyst", "GET", f"/releases/{job_id}/report", params={"format": "json"})
        if case in ("dp", "data-free"):
            assert public["withheld"] is None and public["summaries"]["summary"]["synthetic_rows"], public
            assert page_report.status_code == 200 and api_report.status_code == 200
            texts["page: report (before approval)"] = page_report.text
            texts["api: report json (before approval)"] = api_report.text
            assert "Internal report" not in page_report.text
        else:
            assert public["summaries"] is None and public["withheld"]["summaries"] == "available after approval"
            assert page_report.status_code == 403 and api_report.status_code == 403, case
            assert public["statement"].count("Available after approval") == 3, public["statement"]
            assert public["withheld"]["reason"], public
        if case == "filtered":
            # the job's own record says real rows shaped its output
            with session_scope(svc.settings) as s:
                key = s.get(ReleaseJob, job_id).artifacts["disclosure.json"]
            record = json.loads(get_storage(svc.settings).get_bytes(key))
            assert record["real_checks"]["filtering_applied"] is True, record["real_checks"]
            for text in texts.values():
                assert "rows were removed because of these checks" not in text
        scan(case, job_id, texts)

    for case, job_id in jobs.items():
        body = {"comment": "fit for the island comparison"}
        if svc.api("steward", "GET", f"/releases/{job_id}").json()["release"]["gate"]["overall"] == "fail":
            body["override"] = OVERRIDE
        r = svc.api("steward2", "POST", f"/releases/{job_id}/approve", json=body)
        assert r.status_code == 200, r.text
        view = svc.api("analyst", "GET", f"/releases/{job_id}").json()["release"]
        fit = view["fit_for_purpose"]
        assert fit["purpose"] == purpose and "fit for the island comparison" in fit["text"], fit
        assert fit["verdict"] == ("approved_with_override" if "override" in body else "approved"), (case, fit)
        assert "checks" not in fit and view["public"] is None
        bundle = svc.api("analyst", "GET", f"/releases/{job_id}/bundle")
        assert bundle.status_code == 200, bundle.text
        pem = svc.api("analyst", "GET", "/signing-key").json()["public_key_pem"]
        check = verify_bundle(bundle.content, pem)
        assert check.ok and check.signature_checked, check.problems
        files = _bundle_texts(bundle.content)
        assert json.loads(files["report.json"][0])["fit_for_purpose"] == fit
        assert "Fit for the stated purpose?" in files["report.html"][0]
        page = web.get(f"{svc.url}/releases/{job_id}", timeout=60).text
        assert 'id="fit-for-purpose"' in page
        scan(
            case,
            job_id,
            {
                "api: release (approved)": json.dumps(view),
                "page: release (approved)": page,
                "bundle/report.html (fit section)": files["report.html"][0].split('id="fit-for-purpose"', 1)[1],
                "bundle/report.json fit_for_purpose": json.dumps(fit),
            },
        )
    assert not failures, "\n".join(failures)


def test_the_scan_finds_what_it_looks_for():
    """The scanner itself: each encoding is found, ordinary numbers are not taken for it."""
    seed = 0x2F3A_5B7C_9D1E_4F60
    assert find_hits(f"settings: seed {seed % 2**32}", seed, None, table=False)
    assert find_hits(f'{{"x": "{seed:x}"}}', seed, None, table=False)
    assert find_hits(f"seed={seed % 2**16}", seed, None, table=False)
    assert find_hits(f"<td>{seed % 2**32:,}</td>", seed, None, table=False)
    assert find_hits(f"rows: 275 of {seed % 2**40}", seed, 275, table=True)
    assert not find_hits(f"0.{seed % 2**32} and sha {seed:x}00ff and rows 2750", seed, 275, table=False)
    assert not find_hits(f"value {seed % 2**16}", seed, None, table=True)
    assert find_hits('"train_rows": 12', seed, None, table=False)
    assert not find_hits('"model_train_rows": 50000', seed, None, table=False)
    assert not find_hits("Gentoo: 275", seed, 275, table=False, report=True)
    assert find_hits("real training rows: 275", seed, 275, table=False, report=True)
    assert find_hits('{"sample": "jobs/3/sample/sample.parquet"}', seed, None, table=False)
    assert find_hits("jobs/3/candidates/1/data.csv", seed, None, table=True)


def test_a_failure_after_reading_the_data_is_charged_and_says_nothing_of_the_data(service_factory, tmp_path):
    """Too few usable rows is learned from the data: the charge is kept, and the requester gets
    one fixed message and code, the same as for any other failure after the data was read."""
    svc = service_factory("embedded", **SCAN_SETTINGS)
    svc.start_web()
    svc.start_worker()
    small = tmp_path / "few.csv"
    pd.read_csv(PENGUINS / "penguins.csv").head(6).to_csv(small, index=False)
    name = f"penguins-few-{svc.tokens['steward:username'].rsplit('-', 1)[-1]}"
    with open(small, "rb") as fh:
        r = svc.api(
            "steward",
            "POST",
            "/datasets",
            files={"file": ("few.csv", fh)},
            data={
                "name": name,
                "schema": (PENGUINS / "schema.yaml").read_text(),
                "epsilon_budget": "5",
                "delta_budget": "0.001",
            },
        )
    assert r.status_code == 201, r.text
    r = svc.api("steward", "POST", f"/datasets/{name}/grants", json={"user": svc.tokens["analyst:username"]})
    assert r.status_code == 201, r.text
    r = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": name, "method": "mst", "epsilon": 1.0, "delta": 1e-6, "rows": 100},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["release"]["id"]
    done = svc.wait_for("analyst", job_id, timeout=300)
    assert done["status"] == "failed", done
    assert done["charge"] == "spent"  # no refund: the outcome depended on the data
    assert done["error_code"] == "failed_after_data_read"
    assert "row" not in done["message"] and "6" not in done["message"]
    steward = svc.api("steward", "GET", f"/releases/{job_id}").json()["release"]
    assert steward["error_code"] == "too_few_rows" and "6 rows" in steward["internal"]["error"]
    # where it stopped would tell this cause from a failure in the fit: the requester sees neither
    assert steward["stage"] and done["stage"] is None and done["progress"] == 0.0, (steward, done)
    # the requester's times resolve minutes only, so they do not time the fit; the steward's seconds
    for key in ("created_at", "started_at", "finished_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", done[key]), done[key]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", steward[key]), steward[key]
    ledger = svc.api("steward", "GET", f"/datasets/{name}/ledger").json()["ledger"]
    assert Fraction(ledger["spent"]["epsilon"]) == 1, ledger
    # the spend entry is written when the data is read: the requester's own history is to the minute too
    own = svc.api("analyst", "GET", f"/datasets/{name}/ledger").json()["ledger"]
    assert own["history"] and all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", h["created_at"]) for h in own["history"]
    ), own["history"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", h["created_at"]) for h in ledger["history"])
    # signed audit checkpoints, which any API user may fetch, are stamped to the minute as well
    checkpoints = svc.api("analyst", "GET", "/audit/checkpoints")
    assert checkpoints.status_code == 200, checkpoints.text
    stamps = re.findall(r'"created_at": ?"([^"]+)"', checkpoints.text)
    assert stamps and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", t) for t in stamps), stamps
