"""Every kind of release through the real service: DP statistics, data-free scenarios, non-DP
synthesis and oversampling (under allow-non-dp), and rebalancing of a DP output."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest

from core.bundle import verify_bundle
from tests.integration.release_support import assert_csv_reads_back_as_parquet
from tests.integration.test_release_path import register_demo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run_and_approve(svc, body: dict) -> tuple[dict, zipfile.ZipFile]:
    r = svc.api("analyst", "POST", "/releases", json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["release"]["id"]
    done = svc.wait_for("steward", job_id, timeout=600)
    assert done["status"] == "awaiting_approval", (done.get("internal"), svc.worker_logs())
    approve = {"comment": "ok"}
    if done["gate"]["overall"] == "fail":
        approve["override"] = "test: reviewed"
    r = svc.api("steward", "POST", f"/releases/{job_id}/approve", json=approve)
    assert r.status_code == 200, r.text
    r = svc.api("analyst", "GET", f"/releases/{job_id}/bundle")
    assert r.status_code == 200
    pem = svc.api("", "GET", "/signing-key").json()["public_key_pem"]
    assert verify_bundle(r.content, pem).ok
    assert_csv_reads_back_as_parquet(r.content)
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    manifest = json.loads(zf.read("manifest.json"))
    # the manifest counts the rows released, not the rows sampled
    assert manifest["rows"] == len(pd.read_parquet(io.BytesIO(zf.read("data.parquet")))), manifest
    assert manifest["rows_requested"] == body.get("rows", done["rows"])
    return done, zf


def test_every_release_kind(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    svc.start_worker()
    name = register_demo(svc, epsilon_budget="10")["name"]

    # DP statistics: aggregates only, small cells suppressed, pure epsilon-DP
    done, zf = _run_and_approve(
        svc,
        {
            "dataset": name,
            "method": "dp-statistics",
            "epsilon": 1.0,
            "options": {"by": ["sex"], "columns": ["age", "income"]},
        },
    )
    assert done["kind"] == "dp-statistics" and done["cost"]["epsilon"] == "1" and done["cost"]["delta"] == "0"
    stats = pd.read_csv(io.BytesIO(zf.read("data.csv")))
    assert {"table", "count"} <= set(stats.columns)
    counts = stats["count"].dropna()
    assert (counts >= 10).all() and (counts % 5 == 0).all()  # small cells gone, counts rounded
    assert "small-cell rules" in zf.read("privacy.md").decode()
    assert "count_moe" in stats.columns and (stats["count_moe"].dropna() > 0).all()  # 95% noise intervals

    # DP statistics with the Gaussian mechanism: charged in zCDP, so it composes with MST by adding rho
    from fractions import Fraction

    from privacy.accounting import zcdp_rho

    done, zf = _run_and_approve(
        svc,
        {
            "dataset": name,
            "method": "dp-statistics",
            "epsilon": 1.0,
            "delta": 1e-9,
            "options": {"mechanism": "gaussian", "by": ["sex"], "columns": ["age"]},
        },
    )
    rho_stats = zcdp_rho(1, Fraction(1, 10**9))
    assert Fraction(done["cost"]["rho"]) == rho_stats and done["cost"]["delta"] != "0", done["cost"]
    assert "Gaussian mechanism (zCDP)" in zf.read("privacy.md").decode()
    gaussian = pd.read_csv(io.BytesIO(zf.read("data.csv")))
    row = gaussian[(gaussian["table"] == "numeric") & (gaussian["group"] == "all")].iloc[0]
    assert row["mean_low"] <= row["mean"] <= row["mean_high"]

    # data-free scenario: nothing read, nothing charged
    ledger_before = svc.api("steward", "GET", f"/datasets/{name}/ledger").json()["ledger"]
    done, zf = _run_and_approve(
        svc, {"dataset": name, "method": "scenario", "rows": 500, "options": {"n_features": 5, "n_informative": 3}}
    )
    assert done["kind"] == "scenario" and done["charge"] is None
    data = pd.read_parquet(io.BytesIO(zf.read("data.parquet")))
    assert len(data) == 500
    ledger_after = svc.api("steward", "GET", f"/datasets/{name}/ledger").json()["ledger"]
    assert ledger_after["spent"] == ledger_before["spent"]

    # a DP release whose output is rebalanced with SMOTE: post-processing, still DP
    done, zf = _run_and_approve(
        svc, {"dataset": name, "method": "mst", "epsilon": 0.5, "delta": 1e-9, "rows": 2000, "rebalance": "smote"}
    )
    assert done["cost"]["dp"] is True
    ledger = svc.api("steward", "GET", f"/datasets/{name}/ledger").json()["ledger"]
    rho_mst = Fraction(done["cost"]["rho"])
    zcdp = ledger["remaining"]["zcdp"]
    assert zcdp is not None and Fraction(zcdp["rho_committed"]) >= rho_stats + rho_mst, zcdp
    released = pd.read_parquet(io.BytesIO(zf.read("data.parquet")))
    shares = released["income"].value_counts(normalize=True)
    assert shares.min() > 0.3  # the minority class was 24% of adult; suppression afterwards trims a little
    assert "class rebalancing with `smote` on the synthetic output" in zf.read("privacy.md").decode()

    # non-DP methods need the steward's policy; then the ledger says there is no formal guarantee
    r = svc.api("analyst", "POST", "/releases", json={"dataset": name, "method": "smote"})
    assert r.status_code == 403
    r = svc.api("steward", "PUT", f"/datasets/{name}/policy", json={"policy": {"privacy": "allow-non-dp"}})
    assert r.status_code == 200, r.text
    done, zf = _run_and_approve(svc, {"dataset": name, "method": "smote", "rows": 1000})
    assert done["kind"] == "oversample" and done["cost"]["dp"] is False
    statement = zf.read("privacy.md").decode()
    assert "NOT differentially private" in statement
    ledger = svc.api("steward", "GET", f"/datasets/{name}/ledger").json()["ledger"]
    assert ledger["formal_guarantee"] is False and "NO FORMAL GUARANTEE" in ledger["guarantee"]

    done, zf = _run_and_approve(svc, {"dataset": name, "method": "gaussian-copula", "rows": 1000})
    assert done["kind"] == "synthetic"


def test_dp_statistics_bundle_suppresses_a_small_cell_whole(service_factory):
    """A cell below the policy's threshold publishes no count, and no mean, quantile or histogram bin either."""
    svc = service_factory("redis-postgres")
    svc.start_web()
    svc.start_worker()
    name = register_demo(svc)["name"]
    r = svc.api("steward", "PUT", f"/datasets/{name}/policy", json={"policy": {"small_cell_threshold": 50}})
    assert r.status_code == 200, r.text
    # the demo sample has 21 rows of race Other and 25 of Amer-Indian-Eskimo, 100 of Asian-Pac-Islander
    _, zf = _run_and_approve(
        svc,
        {
            "dataset": name,
            "method": "dp-statistics",
            "epsilon": 2.0,
            "options": {"by": ["race"], "columns": ["age"], "statistics": ["count", "mean", "quantiles", "histogram"]},
        },
    )
    stats = pd.read_csv(io.BytesIO(zf.read("data.csv")))
    numeric = stats[stats["table"] == "numeric"].set_index("group")
    measured = ["mean", "q0.25", "q0.5", "q0.75"]
    for group in ("race=Other", "race=Amer-Indian-Eskimo"):
        assert numeric.loc[group, ["count", *measured]].isna().all(), numeric.loc[group].to_dict()
    for group in ("race=White", "race=Asian-Pac-Islander", "all"):
        assert numeric.loc[group, ["count", *measured]].notna().all(), numeric.loc[group].to_dict()
    counts = stats[stats["table"] == "counts"].set_index("group")["count"]
    assert counts[["race=Other", "race=Amer-Indian-Eskimo"]].isna().all()
    bins = stats[stats["table"] == "histograms"]
    small = bins["group"].isin(["race=Other", "race=Amer-Indian-Eskimo"])
    assert small.any() and bins.loc[small, ["count", "cell_count"]].isna().all().all()
    assert bins.loc[bins["group"] == "race=White", "count"].notna().any()
