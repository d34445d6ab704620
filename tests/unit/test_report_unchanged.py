"""No figure of the report moves beyond its stated standard error: on two fixed tables, every numeric figure
(every section, internal ones included) equals the one the previous implementation gave, up to float
rounding, or, where the report now estimates it on a sample and states its standard error, lies within
3 standard errors of it (tests/unit/report_fingerprints.py says how the expected figures were taken)."""

from __future__ import annotations

import json
import math

import pytest

from tests.unit.report_fingerprints import (
    EXPECTED,
    NAMES,
    SAMPLE_SIZES,
    figures,
    report_dict,
    standard_error,
    statuses,
)

EXPECTED_FIGURES = json.loads(EXPECTED.read_text())
REL, ABS = 1e-9, 1e-12  # float rounding: a vectorised sum may add in another order
SE_FACTOR = 3.0


@pytest.fixture(scope="module", params=NAMES)
def report(request: pytest.FixtureRequest) -> tuple[str, dict]:
    return request.param, report_dict(request.param)


def test_sections_computed_as_before(report: tuple[str, dict]) -> None:
    name, rep = report
    assert statuses(rep) == EXPECTED_FIGURES[name]["statuses"]


def test_every_figure_within_its_standard_error(report: tuple[str, dict]) -> None:
    name, rep = report
    now = figures(rep)
    moved = []
    for path, old in EXPECTED_FIGURES[name]["figures"].items():
        if path in SAMPLE_SIZES:
            continue
        if path not in now:
            moved.append(f"{path}: gone (was {old})")
            continue
        new = now[path]
        if old is None or new is None:
            if old is not new:
                moved.append(f"{path}: {old} -> {new}")
            continue
        if math.isclose(new, old, rel_tol=REL, abs_tol=ABS):
            continue
        se = standard_error(rep, path)
        if se is None:
            moved.append(f"{path}: {old} -> {new} (no standard error stated)")
        elif abs(new - old) > SE_FACTOR * se:
            moved.append(f"{path}: {old} -> {new}, more than {SE_FACTOR:g} x its standard error {se:.3g}")
    assert not moved, f"{len(moved)} figure(s) of the '{name}' report moved:\n" + "\n".join(moved[:40])


def test_the_comparison_can_fail() -> None:
    """A figure moved by more than its stated error, or without one, is caught."""
    rep = {"summary": {"x": 0.5}, "sections": {"s": {"data": {"x_se": 0.01, "y": 1.0}}}}
    assert standard_error(rep, "summary/x") == 0.01
    assert standard_error(rep, "sections/s/data/y") is None
    assert figures(rep) == {"summary/x": 0.5, "sections/s/data/x_se": 0.01, "sections/s/data/y": 1.0}
    model = {"primary_score": "gini", "tstr": {"gini": 0.8, "mae": 1.0}, "standard_error": {"tstr": 0.02}}
    rep = {"sections": {"u": {"data": {"models": {"m": model}}}}}
    assert standard_error(rep, "sections/u/data/models/m/tstr/gini") == 0.02
    assert standard_error(rep, "sections/u/data/models/m/tstr/mae") is None
