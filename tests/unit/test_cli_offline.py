"""The offline CLI: schema propose, synth and methods, with clean errors: exit 2 for usage, 3 for a refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from privacy.schema import PublicSchema
from privacy.synthesizers import REGISTRY
from tests.conftest import PENGUINS, PENGUINS_RAW, PUMS
from webapp.cli import cli

PENGUINS_SCHEMA = PENGUINS.parent / "schema.yaml"
PUMS_SCHEMA = PUMS.parent / "schema.yaml"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_methods_lists_the_catalogue(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["methods", "--json"])
    assert result.exit_code == 0, result.output
    names = {m["name"] for m in json.loads(result.output)}
    assert names == set(REGISTRY)
    text = runner.invoke(cli, ["methods"])
    assert text.exit_code == 0 and "dp-copula" in text.output and "releases real rows" in text.output


def test_schema_propose_marks_learned_values_and_drops_ids_and_text(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "schema.yaml"
    result = runner.invoke(
        cli,
        [
            "schema",
            "propose",
            str(PENGUINS_RAW),
            "-o",
            str(out),
            "--qi",
            "Island,Sex",
            "--sensitive",
            "Body Mass (g)",
            "--target",
            "Species",
        ],
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Proposed public schema") and "NOT PUBLIC YET" in text
    schema = PublicSchema.from_dict(yaml.safe_load(text))
    assert schema.columns["Individual ID"].kind == "identifier"
    assert schema.columns["Comments"].kind == "text"
    assert schema.columns["Date Egg"].kind == "datetime" and "min" in schema.columns["Date Egg"].learned
    assert "values" in schema.columns["Island"].learned
    assert schema.quasi_identifiers == ["Island", "Sex"] and schema.target == "Species"
    # bounds rounded outward: the data's extremes (2700, 6300 g) are not published as such
    mass = schema.columns["Body Mass (g)"]
    assert mass.min < 2700 and mass.max > 6300
    assert "learned from the data" in result.output  # the summary goes to stderr, mixed into output here


def test_schema_propose_refuses_bad_column_choices(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["schema", "propose", str(PENGUINS_RAW), "--qi", "Nope"])
    assert result.exit_code == 2 and "column 'Nope' is not in" in result.output
    result = runner.invoke(cli, ["schema", "propose", str(PENGUINS_RAW), "--qi", "Individual ID"])
    assert result.exit_code == 2 and "identifier" in result.output
    assert "Traceback" not in result.output


def test_synth_writes_rows_and_prints_the_cost(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = runner.invoke(
        cli,
        [
            "synth",
            str(PENGUINS),
            "--schema",
            str(PENGUINS_SCHEMA),
            "-m",
            "dp-copula",
            "--epsilon",
            "0.5",
            "--delta",
            "1e-9",
            "--rows",
            "75",
            "--seed",
            "3",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "privacy cost: epsilon = 0.5, delta = 0.000000001" in result.output
    df = pd.read_csv(out)
    assert len(df) == 75 and list(df.columns) == PublicSchema.from_text(PENGUINS_SCHEMA.read_text()).output_columns


def test_synth_json_and_options(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    result = runner.invoke(
        cli,
        [
            "synth",
            str(PUMS),
            "--schema",
            str(PUMS_SCHEMA),
            "-m",
            "dp-marginals",
            "--epsilon",
            "1",
            "--option",
            "bins=8",
            "--rows",
            "20",
            "-o",
            str(out),
            "--json",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["cost"]["epsilon"] == "1" and data["cost"]["dp"] is True and data["rows"] == 20
    assert len(pd.read_parquet(out)) == 20


def test_data_free_method_needs_no_file(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "scenario.csv"
    result = runner.invoke(
        cli, ["synth", "-m", "scenario", "--option", "weights=0.8,0.2", "--rows", "40", "-o", str(out), "--json", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["cost"]["epsilon"] == "0"
    assert len(pd.read_csv(out)) == 40


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "dp-copula", "--epsilon", "abc"], "epsilon must be a number"),
        (["-m", "dp-copula", "--epsilon", "-1"], "epsilon must be >= 0"),
        (["-m", "dp-copula", "--epsilon", "nan"], "finite"),
        (["-m", "dp-copula"], "give --epsilon"),
        (["-m", "gaussian-copula", "--epsilon", "1"], "not differentially private"),
        (["-m", "no-such-method", "--epsilon", "1"], "unknown method"),
        (["-m", "mst", "--epsilon", "1"], "delta"),
        (["-m", "dp-copula", "--epsilon", "1", "--option", "nonsense=1"], "unknown option"),
    ],
)
def test_bad_requests_fail_with_a_message_and_exit_2(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(
        cli, ["synth", str(PENGUINS), "--schema", str(PENGUINS_SCHEMA), *args, "-o", str(tmp_path / "x.csv")]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.csv").exists()


def test_schema_refusal_comes_before_the_data_is_read(runner: CliRunner, tmp_path: Path) -> None:
    schema = tmp_path / "open.yaml"
    schema.write_text("columns:\n  a: {kind: categorical}\n  b: {kind: continuous, min: 0, max: 1}\n")
    # the data file does not even exist: the refusal must name the schema problem, not the file
    result = runner.invoke(
        cli,
        [
            "synth",
            str(tmp_path / "missing.csv"),
            "--schema",
            str(schema),
            "-m",
            "dp-copula",
            "--epsilon",
            "1",
            "-o",
            str(tmp_path / "x.csv"),
        ],
    )
    assert result.exit_code == 3  # refused: the schema file is not fit for a release
    assert "'a'" in result.output and "declare" in result.output


def test_synthgate_synth_runs_as_a_real_process(tmp_path: Path) -> None:
    out = tmp_path / "pums-synthetic.csv"
    exe = Path(sys.executable).parent / "synthgate"
    command = [str(exe)] if exe.exists() else [sys.executable, "-c", "from webapp.cli import main; main()"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [
            *command,
            "synth",
            str(PUMS),
            "--schema",
            str(PUMS_SCHEMA),
            "--method",
            "dp-copula",
            "--epsilon",
            "1",
            "--rows",
            "200",
            "--seed",
            "1",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "privacy cost: epsilon = 1, delta = 0" in proc.stdout
    assert "[fit" in proc.stderr  # the progress display
    df = pd.read_csv(out)
    assert len(df) == 200 and df["age"].between(0, 100).all()


def test_stats_measures_with_intervals_and_small_cell_rules(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "stats.json"
    result = runner.invoke(
        cli,
        [
            "stats",
            str(PUMS),
            "--schema",
            str(PUMS_SCHEMA),
            "--epsilon",
            "1",
            "--delta",
            "1e-9",
            "--option",
            "mechanism=gaussian",
            "--option",
            'columns=["age", "sex"]',
            "--option",
            'by=["sex"]',
            "--seed",
            "3",
            "-o",
            str(out),
            "-q",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["cost"]["rho"] is not None and printed["budget"]["mechanism"] == "gaussian"
    doc = json.loads(out.read_text())
    counts = pd.DataFrame(doc["tables"]["counts"])
    assert {"count", "count_moe"} <= set(counts.columns)
    kept = counts.dropna(subset=["count"])
    assert (kept["count"] % 5 == 0).all() and (kept["count"] >= 10).all()  # rounded, no small cell
    numeric = pd.DataFrame(doc["tables"]["numeric"])
    row = numeric[numeric["group"] == "all"].iloc[0]
    assert row["mean_low"] <= row["mean"] <= row["mean_high"]
    csv = tmp_path / "stats.csv"
    result = runner.invoke(
        cli, ["stats", str(PUMS), "--schema", str(PUMS_SCHEMA), "--epsilon", "1", "-o", str(csv), "-q"]
    )
    assert result.exit_code == 0 and "privacy cost: epsilon = 1" in result.output, result.output
    assert set(pd.read_csv(csv)["table"]) >= {"counts", "numeric"}


def test_stats_refuses_a_gaussian_request_without_delta_before_reading(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "not-there.csv"  # never opened: the request is refused first
    result = runner.invoke(
        cli,
        [
            "stats",
            str(missing),
            "--schema",
            str(PUMS_SCHEMA),
            "--epsilon",
            "1",
            "--option",
            "mechanism=gaussian",
            "-o",
            str(tmp_path / "x.json"),
        ],
    )
    assert result.exit_code == 2 and "needs a delta" in result.output, result.output


COMPAS = PUMS.parent.parent / "compas" / "compas.csv"


def test_schema_propose_writes_suggestions_as_comments_for_the_steward_to_accept(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "schema.yaml"
    result = runner.invoke(cli, ["schema", "propose", str(COMPAS), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    lines = text.splitlines()
    head = lines[: lines.index("columns:")]
    assert "#   suggested quasi-identifier: age (name looks like an age); hierarchy band 10" in head
    assert "#   suggested quasi-identifier: dob (name looks like a date of birth); hierarchy granularity year" in head
    assert any(line.startswith("#   suggested target: two_year_recid (") for line in head)
    assert any(line.startswith("#   flag identifier on id:") for line in head)
    # next to the column, above its key
    at = lines.index("  age:")
    assert lines[at - 1] == "  # suggested quasi-identifier: age (name looks like an age); hierarchy band 10"
    schema = PublicSchema.from_text(text)  # the comments leave the proposal as it was: no roles until accepted
    assert schema.quasi_identifiers == [] and schema.target is None
    assert all(c.hierarchy is None for c in schema.columns.values())
    assert "suggested (as comments): quasi-identifiers sex, dob, age" in result.output


def test_schema_propose_accept_suggestions_writes_roles_and_hierarchies(runner: CliRunner, tmp_path: Path) -> None:
    from privacy.schema import load_schema

    out = tmp_path / "schema.yaml"
    result = runner.invoke(
        cli, ["schema", "propose", str(COMPAS), "-o", str(out), "--accept-suggestions", "--target", "is_recid"]
    )
    assert result.exit_code == 0, result.output
    schema = load_schema(out)
    assert {"dob", "sex", "race", "age", "c_jail_in"} <= set(schema.quasi_identifiers)
    assert "priors_count" in schema.sensitive
    assert schema.target == "is_recid"  # given on the command line: replaces the suggested target
    assert schema.columns["age"].hierarchy is not None and schema.columns["age"].hierarchy.band == 10
    assert schema.columns["dob"].hierarchy is not None and schema.columns["dob"].hierarchy.granularity == "year"
    assert "hierarchy" in schema.columns["age"].learned and "hierarchy" not in schema.columns["dob"].learned
    assert "#   quasi-identifier: age (name looks like an age); hierarchy band 10" in out.read_text(encoding="utf-8")


def test_schema_propose_json_prints_schema_and_suggestions(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["schema", "propose", str(PUMS), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) == {"schema", "suggestions"}
    assert PublicSchema.from_dict(body["schema"]).columns["age"].kind == "ordinal"
    assert [q["column"] for q in body["suggestions"]["quasi_identifiers"]] == ["age", "sex", "race"]
    assert body["suggestions"]["hierarchies"]["age"] == {"band": 10.0}
