"""The Python client's error mapping: the API's error body and status to one exception class each."""

from __future__ import annotations

import pytest

from synthgate_client.client import _document_text, _number
from synthgate_client.errors import (
    BundleInvalid,
    Conflict,
    NotFound,
    Refused,
    SynthgateError,
    Unavailable,
    Unreachable,
    WaitTimeout,
    error_from_response,
)


def body(code: str, message: str = "m", field: str | None = None) -> dict:
    err = {"code": code, "message": message}
    if field is not None:
        err["field"] = field
    return {"error": err}


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_request", Refused),
        (401, "unauthorized", Refused),
        (403, "forbidden", Refused),
        (403, "policy_violation", Refused),
        (413, "payload_too_large", Refused),
        (422, "schema_error", Refused),
        (429, "too_many_requests", Refused),
        # the budget is a 409 on the API, but what the caller must change is the request
        (409, "budget_exceeded", Refused),
        (404, "not_found", NotFound),
        (409, "conflict", Conflict),
        (503, "queue_unavailable", Unavailable),
        (500, "internal_error", SynthgateError),
        (501, "missing_dependency", SynthgateError),
    ],
)
def test_each_status_and_code_maps_to_its_class(status: int, code: str, cls: type) -> None:
    exc = error_from_response(status, body(code, "say what to change", "epsilon"))
    assert type(exc) is cls
    assert isinstance(exc, SynthgateError)
    assert (exc.code, exc.message, exc.status, exc.field) == (code, "say what to change", status, "epsilon")
    assert str(exc) == f"{code} [epsilon]: say what to change (HTTP {status})"


def test_the_classes_do_not_overlap() -> None:
    """A caller catching NotFound does not catch a refusal or a conflict, and the reverse."""
    assert not isinstance(error_from_response(404, body("not_found")), Refused | Conflict)
    assert not isinstance(error_from_response(409, body("conflict")), Refused | NotFound)
    assert not isinstance(error_from_response(409, body("budget_exceeded")), Conflict | NotFound)


def test_a_missing_field_is_none_and_the_text_has_no_brackets() -> None:
    exc = error_from_response(404, body("not_found", "release 9 not found"))
    assert exc.field is None
    assert str(exc) == "not_found: release 9 not found (HTTP 404)"


@pytest.mark.parametrize(
    "payload",
    [None, {"error": "a string, not an object"}, {"detail": "x"}, ["error"], {"error": {"message": "no code"}}],
)
def test_a_body_that_is_not_the_services_error_keeps_the_raw_text(payload: object) -> None:
    exc = error_from_response(502, payload, "  <html>Bad gateway</html>  ")
    assert type(exc) is SynthgateError
    assert (exc.code, exc.message, exc.status, exc.field) == ("http_error", "<html>Bad gateway</html>", 502, None)
    empty = error_from_response(404, None, "")
    assert type(empty) is NotFound and empty.message == "HTTP 404"


def test_the_raw_text_is_cut_to_300_characters() -> None:
    assert len(error_from_response(500, None, "x" * 5000).message) == 300


def test_a_503_carries_retry_after_in_seconds() -> None:
    exc = error_from_response(503, body("database_unavailable"), retry_after="5")
    assert isinstance(exc, Unavailable) and exc.retry_after == 5.0
    assert error_from_response(503, body("database_unavailable"), retry_after="soon").retry_after is None  # type: ignore[attr-defined]
    assert error_from_response(503, body("database_unavailable")).retry_after is None  # type: ignore[attr-defined]


def test_the_client_side_errors() -> None:
    exc = Unreachable("http://nowhere:1", "the connection failed")
    assert (exc.code, exc.status, exc.url) == ("unreachable", None, "http://nowhere:1")
    assert "http://nowhere:1" in exc.message and "SYNTHGATE_URL" in exc.message
    bad = BundleInvalid("b.zip", ["data.csv does not match its SHA-256 in the manifest", "manifest.sig is missing"])
    assert bad.problems == ["data.csv does not match its SHA-256 in the manifest", "manifest.sig is missing"]
    assert "data.csv does not match" in str(bad) and bad.code == "bundle_invalid"
    timeout = WaitTimeout("wait_timeout", "still running")
    assert isinstance(timeout, TimeoutError) and isinstance(timeout, SynthgateError)


def test_numbers_as_the_api_writes_them() -> None:
    assert _number("0.25") == 0.25
    assert _number("1/3 (0.333333)") == pytest.approx(1 / 3)
    assert _number("inf") == float("inf")
    assert _number(2) == 2.0
    for none in ("-", "", None):
        assert _number(none) != _number(none)  # NaN


def test_schema_documents_from_a_dict_a_file_or_text(tmp_path) -> None:
    import json

    assert json.loads(_document_text({"columns": {"a": {"kind": "categorical"}}}, "schema") or "") == {
        "columns": {"a": {"kind": "categorical"}}
    }
    f = tmp_path / "schema.yaml"
    f.write_text("columns: {}\n")
    assert _document_text(f, "schema") == "columns: {}\n"
    assert _document_text(str(f), "schema") == "columns: {}\n"
    assert _document_text("columns:\n  a: {kind: categorical}\n", "schema") == "columns:\n  a: {kind: categorical}\n"
    assert _document_text(None, "schema") is None
    with pytest.raises(FileNotFoundError, match=r"schema file .*missing\.yaml.* does not exist"):
        _document_text(str(tmp_path / "missing.yaml"), "schema")
    with pytest.raises(TypeError, match="policy must be a dict, a path or YAML/JSON text"):
        _document_text(3, "policy")  # type: ignore[arg-type]
