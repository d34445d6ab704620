"""The time estimate (privacy/estimate.py) and its use by the service (core/estimates.py): monotone in the
sizes and options that drive the time, suggestions that do fit, no raw row count read, and a request over
the policy's limit refused before any reservation."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from sqlalchemy import func, select

from core import releases
from core.db import dispose_engines, session_scope, write_session
from core.estimates import job_estimate, request_estimate, time_target_options
from core.models import Dataset, LedgerEntry, ReleaseJob
from privacy.estimate import EstimateOverLimit, check_estimate, estimate_release, faster_options
from privacy.schema import PublicSchema, load_schema
from tests.unit.db_support import ROOT, release_db, user

ADULT = load_schema(ROOT / "tests/data/adult/schema.yaml")


@pytest.mark.parametrize(
    "method", ["mst", "aim", "mwem", "dpctgan", "patectgan", "ctgan", "tvae", "copulagan", "gaussian-copula"]
)
def test_the_estimate_grows_with_the_rows(method):
    small = estimate_release(method, ADULT, 1_000, {}, 1.0, delta=1e-6)
    large = estimate_release(method, ADULT, 100_000, {}, 1.0, delta=1e-6)
    assert large.total_seconds > small.total_seconds > 0
    assert small.low_seconds < small.total_seconds < small.high_seconds
    assert "rows" in small.basis


@pytest.mark.parametrize(
    ("method", "option", "low", "high"),
    [
        ("dpctgan", "epochs", 1, 20),
        ("ctgan", "epochs", 1, 50),
        ("tvae", "epochs", 1, 50),
        ("copulagan", "epochs", 1, 50),
        ("patectgan", "epochs", 1, 20),
        ("mwem", "iterations", 3, 30),
        ("mwem", "mult_weights_iterations", 2, 20),
        ("aim", "rounds", 20, 200),
    ],
)
def test_the_estimate_grows_with_the_options_that_drive_the_time(method, option, low, high):
    a = estimate_release(method, ADULT, 20_000, {option: low}, 10.0, delta=1e-6)
    b = estimate_release(method, ADULT, 20_000, {option: high}, 10.0, delta=1e-6)
    assert b.fit_seconds > a.fit_seconds
    assert a.report_seconds == b.report_seconds


@pytest.mark.parametrize("method", ["ctgan", "tvae", "copulagan"])
def test_sdvs_gans_count_the_numeric_columns_each_fits_a_mixture_to(method):
    """As wide a table costs more when more of its columns are numeric: each gets a Gaussian mixture."""
    numeric = ADULT.subset(["age", "fnlwgt", "hours-per-week", "sex"])
    categorical = ADULT.subset(["workclass", "education", "race", "sex"])
    many = estimate_release(method, numeric, 20_000, {"epochs": 5})
    few = estimate_release(method, categorical, 20_000, {"epochs": 5})
    assert many.columns == few.columns == 4
    assert many.fit_seconds > few.fit_seconds
    assert "numeric columns (3)" in many.basis and "numeric columns (0)" in few.basis


def test_options_given_as_text_are_read_as_numbers_and_bad_ones_are_refused():
    as_text = estimate_release("dpctgan", ADULT, 20_000, {"epochs": "3"})
    as_number = estimate_release("dpctgan", ADULT, 20_000, {"epochs": 3})
    assert as_text == as_number
    with pytest.raises(Exception, match="epochs"):
        estimate_release("dpctgan", ADULT, 20_000, {"epochs": 0})


@pytest.mark.parametrize(
    ("method", "limit_min"),
    [("dpctgan", 3), ("mwem", 5), ("ctgan", 3), ("tvae", 1), ("copulagan", 3), ("patectgan", 0.3), ("aim", 0.5)],
)
def test_each_suggestion_brings_the_estimate_under_the_limit(method, limit_min):
    options = {"dpctgan": {"epochs": 50}, "mwem": {"iterations": 300}, "aim": {"rounds": 2000}}.get(method, {})
    rows = 27_000
    with pytest.raises(EstimateOverLimit) as refused:
        check_estimate(method, ADULT, rows, options, limit_min, epsilon=1.0, delta=1e-6, dataset="adult")
    err = refused.value
    assert err.code == "estimate_over_limit" and err.status == 422
    assert f"{limit_min:g} min limit" in err.message and "max_estimated_minutes" in err.message
    suggestions = faster_options(method, ADULT, rows, options, limit_min * 60, epsilon=1.0, delta=1e-6)
    assert suggestions and suggestions[0] in err.message
    for text in suggestions:
        change = re.match(r"(\w+)=(\d+) ", text)
        if change:
            tuned = {**options, change[1]: int(change[2])}
            assert estimate_release(method, ADULT, rows, tuned, 1.0, delta=1e-6).total_seconds <= limit_min * 60
        else:
            other = re.match(r"method (\S+) ", text)
            assert other, text
            assert estimate_release(other[1], ADULT, rows, {}, 1.0).total_seconds <= limit_min * 60


def test_no_limit_and_an_estimate_under_it_pass():
    assert check_estimate("mst", ADULT, 48_842, {}, None).total_seconds > 0
    assert check_estimate("mst", ADULT, 48_842, {}, 5).total_seconds < 300


def test_a_dp_statistics_release_has_no_report():
    est = estimate_release("dp-statistics", ADULT, 10_000, {})
    assert est.report_seconds == 0


# ------------------------------------------------------------------------------------ the service


@pytest.fixture
def env(tmp_path):
    yield release_db(tmp_path, "penguins", "10")
    dispose_engines()


def _set_policy(settings, **changes):
    with write_session(settings) as s:
        ds = s.execute(select(Dataset).where(Dataset.name == "penguins")).scalar_one()
        ds.policy = {**(ds.policy or {}), **changes}


def _set_n_rows(settings, n):
    with write_session(settings) as s:
        s.execute(select(Dataset).where(Dataset.name == "penguins")).scalar_one().n_rows = n


def test_the_estimate_never_reads_the_tables_row_count(env):
    """The analyst's estimate is the same whatever the (private) row count of the table is."""
    query = {"method": "dpctgan", "epsilon": "1", "options": {"epochs": "3"}}
    seen = []
    for n_rows in (7, 123_457, 9_876_543):
        _set_n_rows(env, n_rows)
        with session_scope(env) as s:
            ds = s.execute(select(Dataset).where(Dataset.name == "penguins")).scalar_one()
            seen.append(request_estimate(s, ds, query))
    assert seen[0] == seen[1] == seen[2]
    assert seen[0]["rows"] == releases.DEFAULT_ROWS  # no public row count declared: the default
    _set_policy(env, public_row_count=40_000)
    with session_scope(env) as s:
        ds = s.execute(select(Dataset).where(Dataset.name == "penguins")).scalar_one()
        assert request_estimate(s, ds, query)["rows"] == 40_000
        assert request_estimate(s, ds, {**query, "rows": "500"})["rows"] == 40_000  # the table's size drives it


def _counts(settings):
    with session_scope(settings) as s:
        return (
            s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one(),
            s.execute(select(func.count()).select_from(ReleaseJob)).scalar_one(),
        )


def test_a_request_over_the_limit_is_refused_before_any_reservation(env):
    _set_policy(env, max_estimated_minutes=2, public_row_count=100_000)
    before = _counts(env)
    with write_session(env) as s:
        req = releases.ReleaseRequest(
            dataset="penguins", method="dpctgan", epsilon=1.0, delta=1e-7, options={"epochs": 40}
        )
        with pytest.raises(EstimateOverLimit) as refused:
            releases.request_release(s, user(s, "analyst"), req, env)
    assert refused.value.code == "estimate_over_limit" and refused.value.status == 422
    assert "2 min limit" in refused.value.message and "epochs=" in refused.value.message
    assert _counts(env) == before  # no ledger entry, no job
    # the option change the message names is accepted and reserves
    epochs = int(re.search(r"epochs=(\d+)", refused.value.message)[1])
    with write_session(env) as s:
        req = releases.ReleaseRequest(
            dataset="penguins", method="dpctgan", epsilon=1.0, delta=1e-7, options={"epochs": epochs}
        )
        job = releases.request_release(s, user(s, "analyst"), req, env)
        view = releases.job_view(s, user(s, "analyst"), job)
    assert view["estimate"]["total_seconds"] <= 120 and view["estimate"]["over_limit"] is False
    assert _counts(env) == (before[0] + 1, before[1] + 1)


def test_the_release_view_carries_the_estimate_of_the_request(env):
    with write_session(env) as s:
        req = releases.ReleaseRequest(dataset="penguins", method="mst", epsilon=1.0, delta=1e-7, rows=300)
        job = releases.request_release(s, user(s, "analyst"), req, env)
        est = job_estimate(s, job)
        schema = PublicSchema.from_dict(s.get(Dataset, job.dataset_id).public_schema)
    assert est is not None and est["rows"] == 300 and est["method"] == "mst"
    assert est["total_seconds"] == round(estimate_release("mst", schema, 300, {}).total_seconds, 1)
    assert est["limit_minutes"] == 60 and est["over_limit"] is False


# ------------------------------------------------------------------- DPCTGAN's time target and the policy


#: a public row count at which DPCTGAN's default plan (ten epochs, or as many as fit 5 CPU minutes) is over 2 minutes
BIG = 100_000


def _policy(**fields):  # type: ignore[no-untyped-def]
    from privacy.policy import DatasetPolicy

    return DatasetPolicy.from_dict(fields)


def test_dpctgans_unset_time_target_follows_a_tighter_limit_and_its_plan_fits_it():
    policy = _policy(max_estimated_minutes=2, public_row_count=BIG)
    default = estimate_release("dpctgan", ADULT, BIG, {}, 1.0, delta=1e-7)
    assert default.total_seconds > 120  # the 5-minute default target alone would be refused
    options = time_target_options(ADULT, policy, "dpctgan", {"sigma": 4.0}, None)
    assert options["sigma"] == 4.0 and 0.5 <= options["minutes"] < 2
    assert options["minutes"] * 60 <= 120 - default.report_seconds  # the report's share left to it
    est = estimate_release("dpctgan", ADULT, BIG, options, 1.0, delta=1e-7)
    assert est.fit_seconds <= options["minutes"] * 60 and est.total_seconds <= 120
    # the plan the fit and the estimate share trains fewer epochs than for the default target
    planned, before = _epochs(est.basis), _epochs(default.basis)
    assert 1 <= planned < before


def _epochs(basis: str) -> int:
    return int(re.search(r"epochs \((\d+)\)", basis)[1])


@pytest.mark.parametrize(
    ("method", "options", "fields"),
    [
        ("dpctgan", {}, {"max_estimated_minutes": 60}),  # the default is the tighter: left alone
        ("dpctgan", {}, {"max_estimated_minutes": None}),  # no limit
        ("dpctgan", {"minutes": 4}, {"max_estimated_minutes": 2}),  # the analyst's (refused by the estimate)
        ("mst", {}, {"max_estimated_minutes": 0.1}),  # no time target to set
    ],
)
def test_the_time_target_is_left_alone_when_the_request_or_the_policy_sets_none(method, options, fields):
    assert time_target_options(ADULT, _policy(**fields), method, options, BIG) == options


def test_a_target_sent_as_null_is_unset():
    options = time_target_options(ADULT, _policy(max_estimated_minutes=2), "dpctgan", {"minutes": None}, BIG)
    assert 0.5 <= options["minutes"] < 2


def test_a_limit_below_what_the_report_takes_keeps_the_options_least_target():
    options = time_target_options(ADULT, _policy(max_estimated_minutes=0.05), "dpctgan", {}, BIG)
    assert options == {"minutes": 0.5}  # still a valid option; the estimate refuses the request


def test_a_default_dpctgan_request_is_planned_for_the_policys_limit_and_stores_it(env):
    _set_policy(env, max_estimated_minutes=2, public_row_count=BIG)
    with write_session(env) as s:
        req = releases.ReleaseRequest(dataset="penguins", method="dpctgan", epsilon=1.0, delta=1e-7)
        job = releases.request_release(s, user(s, "analyst"), req, env)
        view = releases.job_view(s, user(s, "analyst"), job)
        stored, cost = (
            dict(job.options),
            s.execute(select(LedgerEntry).where(LedgerEntry.job_id == job.id)).scalar_one(),
        )
        schema = PublicSchema.from_dict(s.get(Dataset, job.dataset_id).public_schema)
    assert 0.5 <= stored["minutes"] < 2 and view["options"] == stored
    assert view["estimate"]["over_limit"] is False and view["estimate"]["total_seconds"] <= 120
    assert estimate_release("dpctgan", schema, BIG, {}, 1.0, delta=1e-7).total_seconds > 120
    assert Fraction(cost.epsilon) == 1  # charged what was asked, whatever the plan
    # the estimate before the request shows the same, and an explicit target over the limit is still refused
    with session_scope(env) as s:
        ds = s.execute(select(Dataset).where(Dataset.name == "penguins")).scalar_one()
        query = {"method": "dpctgan", "epsilon": "1", "delta": "1e-7"}
        assert request_estimate(s, ds, query)["total_seconds"] == view["estimate"]["total_seconds"]
    with write_session(env) as s:
        req = releases.ReleaseRequest(
            dataset="penguins", method="dpctgan", epsilon=1.0, delta=1e-7, options={"minutes": 5}
        )
        with pytest.raises(EstimateOverLimit):
            releases.request_release(s, user(s, "analyst"), req, env)
