"""`synthgate evaluate`, run as the data owner would, on local files."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from privacy.budget import PrivacyCost
from privacy.schema import conform_table, load_schema
from privacy.synthesizers import create_synthesizer
from tests.conftest import DATA, PENGUINS
from webapp.cli import evaluate as evaluate_module

SCHEMA = DATA / "penguins" / "schema.yaml"


@pytest.fixture(scope="module")
def cli() -> click.Group:
    group = click.Group()
    evaluate_module.register(group)
    return group


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """REAL (training rows), HOLDOUT and a dp-marginals SYNTH fitted on REAL, as CSV files."""
    root = tmp_path_factory.mktemp("evaluate")
    schema = load_schema(SCHEMA)
    raw = pd.read_csv(PENGUINS).sample(frac=1.0, random_state=0)
    real, holdout = raw.iloc[:270], raw.iloc[270:]
    synth = create_synthesizer("dp-marginals", seed=2)
    synth.fit(conform_table(real, schema)[0], schema, PrivacyCost(2, 1e-6))
    paths = {"real": root / "real.csv", "holdout": root / "holdout.csv", "synth": root / "synth.csv", "root": root}
    real.to_csv(paths["real"], index=False)
    holdout.to_csv(paths["holdout"], index=False)
    synth.sample(300).to_csv(paths["synth"], index=False)
    return paths


def run(cli: click.Group, *args: str) -> object:
    return CliRunner().invoke(cli, ["evaluate", *args], catch_exceptions=False)


def test_writes_the_internal_report_by_default(cli: click.Group, files: dict[str, Path]) -> None:
    html, js = files["root"] / "r.html", files["root"] / "r.json"
    result = run(
        cli,
        str(files["real"]),
        str(files["synth"]),
        "--schema",
        str(SCHEMA),
        "--holdout",
        str(files["holdout"]),
        "-o",
        str(html),
        "--json",
        str(js),
        "-q",
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["audience"] == "internal" and line["overall"] in ("pass", "warn", "fail")
    assert 0.0 <= line["fidelity_score"] <= 1.0 and "membership_auc" in line
    doc = json.loads(js.read_text())
    assert {"synthetic", "fidelity", "utility", "privacy"} <= set(doc["sections"])
    assert doc["settings"]["thresholds"]["max_membership_auc"] == 0.6  # the policy defaults
    assert not any("No holdout was given" in n for n in doc["sections"]["privacy"]["notes"])
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "Internal report" in page and "data:image/png" in page


def test_public_only_writes_what_an_analyst_may_see(cli: click.Group, files: dict[str, Path]) -> None:
    js = files["root"] / "public.json"
    result = run(
        cli,
        str(files["real"]),
        str(files["synth"]),
        "--schema",
        str(SCHEMA),
        "--holdout",
        str(files["holdout"]),
        "--json",
        str(js),
        "--public-only",
        "-q",
        "--sections",
        "fidelity",
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line == {"overall": "withheld", "audience": "public", "synthetic_rows": 300, "synthetic_columns": 8}
    doc = json.loads(js.read_text())
    assert set(doc["sections"]) == {"synthetic"} and doc["withheld_sections"] == ["fidelity"]


def test_without_a_holdout_real_is_split_and_the_report_warns(cli: click.Group, files: dict[str, Path]) -> None:
    js = files["root"] / "split.json"
    result = run(
        cli,
        str(files["real"]),
        str(files["synth"]),
        "--schema",
        str(SCHEMA),
        "--json",
        str(js),
        "--sections",
        "privacy",
        "--policy",
        str(_policy(files["root"])),
    )
    assert result.exit_code == 0, result.output
    assert "No holdout was given" in result.stderr
    doc = json.loads(js.read_text())
    assert any("No holdout was given" in n for n in doc["sections"]["privacy"]["notes"])
    assert doc["settings"]["thresholds"]["max_membership_auc"] == 0.55
    assert doc["checks"][2]["name"] == "membership_auc" and doc["checks"][2]["threshold"] == 0.55


def _policy(root: Path) -> Path:
    path = root / "policy.yaml"
    path.write_text("max_membership_auc: 0.55\nmin_fidelity: 0.5\n")
    return path


def test_user_mistakes_exit_2_and_a_table_that_does_not_fit_exits_3(cli: click.Group, files: dict[str, Path]) -> None:
    no_output = run(cli, str(files["real"]), str(files["synth"]), "--schema", str(SCHEMA))
    assert no_output.exit_code == 2 and "-o report.html" in no_output.stderr
    bad_section = run(
        cli,
        str(files["real"]),
        str(files["synth"]),
        "--schema",
        str(SCHEMA),
        "-o",
        "x.html",
        "--sections",
        "fidelity,charts",
    )
    assert bad_section.exit_code == 2 and "charts" in bad_section.stderr
    short = files["root"] / "short.csv"
    pd.read_csv(files["synth"]).drop(columns=["island"]).to_csv(short, index=False)
    missing = run(cli, str(files["real"]), str(short), "--schema", str(SCHEMA), "-o", "x.html")
    assert missing.exit_code == 3 and "island" in missing.stderr  # refused: the file does not fit the schema
    bad_target = run(
        cli, str(files["real"]), str(files["synth"]), "--schema", str(SCHEMA), "-o", "x.html", "--target", "wingspan"
    )
    assert bad_target.exit_code == 2 and "wingspan" in bad_target.stderr
