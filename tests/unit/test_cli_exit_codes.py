"""One exit-code table for the whole CLI, and errors as JSON on stderr under --json (no service needed)."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
from click.testing import CliRunner

from tests.conftest import PENGUINS
from webapp.cli import cli
from webapp.cli._common import (
    EXIT_CONFLICT,
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    ApiError,
    error_from_api,
    exit_code_for,
    exit_code_for_local,
    json_wanted,
)

PENGUINS_SCHEMA = PENGUINS.parent / "schema.yaml"
UNREACHABLE = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("status", "code", "exit_code"),
    [
        (400, "invalid_request", EXIT_REFUSED),
        (400, "invalid_privacy_value", EXIT_REFUSED),
        (401, "unauthorized", EXIT_REFUSED),
        (403, "forbidden", EXIT_REFUSED),
        (403, "policy_violation", EXIT_REFUSED),
        (413, "payload_too_large", EXIT_REFUSED),
        (422, "schema_error", EXIT_REFUSED),
        (404, "not_found", EXIT_NOT_FOUND),
        (409, "conflict", EXIT_CONFLICT),
        (409, "schema_version_conflict", EXIT_CONFLICT),
        (409, "budget_exceeded", EXIT_REFUSED),  # a privacy refusal, whatever its HTTP status
        (422, "disclosure_infeasible", EXIT_REFUSED),
        (429, "rate_limited", EXIT_UNAVAILABLE),
        (500, "internal_error", EXIT_UNAVAILABLE),
        (501, "missing_dependency", EXIT_UNAVAILABLE),
        (503, "service_unavailable", EXIT_UNAVAILABLE),
        (302, "http_error", EXIT_UNAVAILABLE),
    ],
)
def test_http_status_and_code_map_to_one_exit_code(status: int, code: str, exit_code: int) -> None:
    assert exit_code_for(status, code) == exit_code
    err = error_from_api(ApiError(status, code, "no", field="epsilon"))
    assert (err.exit_code, err.code, err.status, err.field) == (exit_code, code, status, "epsilon")


@pytest.mark.parametrize(
    ("status", "code", "exit_code"),
    [
        (400, "invalid_privacy_value", EXIT_USAGE),  # a bad value on the command line, found before asking anything
        (400, "unknown_method", EXIT_USAGE),
        (400, "invalid_request", EXIT_USAGE),
        (422, "schema_error", EXIT_REFUSED),  # a schema or table that does not fit
        (409, "budget_exceeded", EXIT_REFUSED),
        (403, "policy_violation", EXIT_REFUSED),
        (409, "conflict", EXIT_CONFLICT),
        (404, "not_found", EXIT_NOT_FOUND),
        (501, "missing_dependency", EXIT_UNAVAILABLE),
    ],
)
def test_errors_raised_in_this_process_map_to_usage_for_bad_values(status: int, code: str, exit_code: int) -> None:
    assert exit_code_for_local(status, code) == exit_code


def test_json_is_wanted_only_where_json_is_a_flag() -> None:
    assert json_wanted(cli, ["releases", "show", "3", "--json"])
    assert json_wanted(cli, ["--url", "U", "synth", "x.csv", "--json"])
    assert not json_wanted(cli, ["releases", "show", "3"])
    # evaluate's --json names the file for the JSON report: its errors stay text
    assert not json_wanted(cli, ["evaluate", "r.csv", "s.csv", "--json", "report.json"])


def _error(result) -> dict:  # type: ignore[no-untyped-def]
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return json.loads(lines[0])["error"]


def test_a_bad_value_under_json_is_a_json_error_on_stderr_exit_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    args = ["synth", str(PENGUINS), "--schema", str(PENGUINS_SCHEMA), "-m", "dp-copula", "--epsilon", "abc"]
    result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "x.csv"), "--json"])
    assert result.exit_code == EXIT_USAGE
    error = _error(result)
    assert error["code"] == "invalid_privacy_value" and error["field"] == "epsilon"
    assert "epsilon must be a number" in error["message"] and "status" not in error
    # without --json: the same error as one line of text
    result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith("error: epsilon must be a number") and len(result.stderr.splitlines()) == 1


def test_a_schema_refusal_under_json_exits_3(tmp_path) -> None:  # type: ignore[no-untyped-def]
    schema = tmp_path / "open.yaml"
    schema.write_text("columns:\n  a: {kind: categorical}\n  b: {kind: continuous, min: 0, max: 1}\n")
    result = CliRunner().invoke(
        cli,
        [
            "synth",
            str(PENGUINS),
            "--schema",
            str(schema),
            "-m",
            "dp-copula",
            "--epsilon",
            "1",
            "-o",
            str(tmp_path / "x.csv"),
            "--json",
        ],
    )
    assert result.exit_code == EXIT_REFUSED
    assert _error(result)["code"] == "schema_error"


def test_click_usage_errors_are_json_too_under_json() -> None:
    result = CliRunner().invoke(cli, ["releases", "show", "abc", "--json"])
    assert result.exit_code == EXIT_USAGE
    error = _error(result)
    assert error["code"] == "usage_error" and "'abc' is not a valid integer" in error["message"]
    result = CliRunner().invoke(cli, ["releases", "show", "abc"])
    assert result.exit_code == EXIT_USAGE and "Usage: " in result.stderr


def test_unreachable_service_exits_6_with_a_json_error() -> None:
    result = CliRunner().invoke(cli, ["releases", "list", "--url", UNREACHABLE, "--token", "t", "--json"])
    assert result.exit_code == EXIT_UNAVAILABLE
    error = _error(result)
    assert error["code"] == "unreachable" and UNREACHABLE in error["message"]


@pytest.mark.parametrize(
    "args",
    [
        ["--url", "http://127.0.0.1:7", "releases", "--url", "http://127.0.0.1:8", "list", "--url", UNREACHABLE],
        ["--url", UNREACHABLE, "datasets", "list"],
        ["datasets", "--url", UNREACHABLE, "list"],
        ["datasets", "list", "--url", UNREACHABLE],
        ["ledger", "adult", "--url", UNREACHABLE],
        ["--url", UNREACHABLE, "ledger", "adult"],
    ],
)
def test_url_is_taken_wherever_it_is_given_the_last_one_winning(args: list[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYNTHGATE_URL", "http://127.0.0.1:6")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == EXIT_UNAVAILABLE
    assert f"cannot reach synthgate at {UNREACHABLE}:" in result.stderr, result.stderr


def test_the_environment_gives_the_url_when_no_option_does(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYNTHGATE_URL", UNREACHABLE)
    result = CliRunner().invoke(cli, ["releases", "list"])
    assert result.exit_code == EXIT_UNAVAILABLE and f"at {UNREACHABLE}:" in result.stderr


def test_a_url_that_is_not_one_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["releases", "list", "--url", "not a url"])
    assert result.exit_code == EXIT_USAGE and "is not a URL such as" in result.stderr


def test_version_is_the_distribution_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"synthgate {metadata.version('synthgate')}"


def test_every_client_command_takes_json() -> None:
    for group in ("datasets", "releases"):
        for name, command in cli.commands[group].commands.items():  # type: ignore[attr-defined]
            flags = {opt for p in command.params for opt in p.opts}
            assert {"--json", "--url", "--token"} <= flags, (group, name)
    for name in ("ledger",):
        assert {"--json", "--url", "--token"} <= {o for p in cli.commands[name].params for o in p.opts}
    assert "--json" in {o for p in cli.commands["bundle"].commands["verify"].params for o in p.opts}  # type: ignore[attr-defined]


def test_an_unreachable_database_exits_6_without_a_traceback(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYNTHGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SYNTHGATE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    result = CliRunner().invoke(cli, ["users", "create", "bob", "--role", "analyst", "--json"])
    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    assert _error(result)["code"] == "database_unavailable"


def test_demo_logins_of_an_earlier_version_are_read_without_tokens(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from webapp.cli._demo import read_logins

    path = tmp_path / "demo-logins.json"
    path.write_text(json.dumps({"steward": "pw1", "analyst": "pw2"}))
    assert read_logins(path) == {
        "steward": {"role": "steward", "password": "pw1", "token": None},
        "analyst": {"role": "analyst", "password": "pw2", "token": None},
    }


def test_the_progress_line_names_a_long_stage_s_time_left():
    from webapp.cli.client import eta_words

    assert eta_words(None) == ""
    assert eta_words(0) == " ~1 s left"
    assert eta_words(42) == " ~42 s left"
    assert eta_words(121) == " ~3 min left"
