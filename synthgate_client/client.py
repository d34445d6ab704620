"""`Client`: a synthgate service's JSON API (/api/v1) from Python.

Listings come back as pandas DataFrames, single objects as the API's dicts, releases as `Release`
objects. Every error the service answers with raises one of synthgate_client.errors' exceptions.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import requests

from synthgate_client.errors import Unreachable, error_from_response
from synthgate_client.release import Release

__all__ = ["DEFAULT_URL", "Client"]

DEFAULT_URL = "http://127.0.0.1:8000"

Number = int | float | str
SchemaLike = Mapping[str, Any] | str | os.PathLike[str]


def _ref(name: str | int) -> str:
    return quote(str(name), safe="")


def _number(text: Any) -> float:
    """A ledger or budget figure as a float: '0.25', '1/3 (0.333333)', 'inf'; '-' (none) is NaN."""
    if isinstance(text, int | float):
        return float(text)
    if not isinstance(text, str) or text in ("", "-"):
        return math.nan
    head = text.split(" ", 1)[0]
    if "/" in head:
        num, den = head.split("/", 1)
        return float(num) / float(den)
    return float(head)


def _document_text(value: SchemaLike | None, what: str) -> str | None:
    """A schema or policy as the YAML/JSON text the API takes: a dict, a file path, or the text itself."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return json.dumps(dict(value), indent=2)
    if isinstance(value, os.PathLike):
        return Path(value).read_text(encoding="utf-8")
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a dict, a path or YAML/JSON text, not {type(value).__name__}")
    if "\n" not in value:
        path = Path(value).expanduser()
        if path.is_file():
            return path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml", ".json"):
            raise FileNotFoundError(f"{what} file {value!r} does not exist; pass a path to a file, a dict or YAML text")
    return value


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)


class Client:
    """A session with one synthgate service, as one user.

    `url` defaults to $SYNTHGATE_URL (else http://127.0.0.1:8000), `token` to $SYNTHGATE_TOKEN; the token
    is sent as a Bearer token on every request. `timeout` bounds each HTTP request, in seconds.
    """

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 120.0) -> None:
        self.url = (url or os.environ.get("SYNTHGATE_URL") or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get("SYNTHGATE_TOKEN")
        self.timeout = timeout
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self._public_key: str | None = None

    def __repr__(self) -> str:
        return f"Client(url={self.url!r})"

    def close(self) -> None:
        """Close the HTTP session's connections."""
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- HTTP -----------------------------------------------------------------------------------------
    def call(self, method: str, path: str, *, stream: bool = False, **kwargs: Any) -> requests.Response:
        """One API call (`path` under /api/v1); an error answer raises its SynthgateError."""
        try:
            resp = self.session.request(
                method, f"{self.url}/api/v1{path}", timeout=self.timeout, stream=stream, **kwargs
            )
        except requests.Timeout as exc:
            raise Unreachable(self.url, f"no answer within {self.timeout:g} s") from exc
        except requests.ConnectionError as exc:
            raise Unreachable(self.url, "the connection failed") from exc
        except requests.RequestException as exc:  # an invalid URL, a redirect loop
            raise Unreachable(self.url, type(exc).__name__) from exc
        if resp.status_code >= 400:
            text = resp.text
            try:
                body = json.loads(text)
            except ValueError:
                body = None
            raise error_from_response(resp.status_code, body, text, resp.headers.get("Retry-After"))
        return resp

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs).json()

    def post(self, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["json"] = body
        return self.call("POST", path, **kwargs).json()

    # ----- the service ----------------------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        """Who the token belongs to: {"id", "username", "role"}."""
        return dict(self.get("/me"))

    def public_key(self) -> str:
        """The service's Ed25519 public key (PEM) that signs release bundles (fetched once per client)."""
        if self._public_key is None:
            self._public_key = str(self.get("/signing-key")["public_key_pem"])
        return self._public_key

    def methods(self) -> pd.DataFrame:
        """The release methods the service offers, one row each."""
        rows = self.get("/methods")["methods"]
        return pd.DataFrame(rows)

    # ----- datasets -------------------------------------------------------------------------------------
    def register(
        self,
        data: str | os.PathLike[str] | pd.DataFrame,
        name: str,
        schema: SchemaLike | None = None,
        policy: SchemaLike | None = None,
        epsilon_budget: Number | None = None,
        delta_budget: Number | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Register a table as dataset `name` (stewards): a CSV or Parquet file, or a DataFrame (sent as Parquet).

        `schema` and `policy` are dicts, paths to YAML/JSON files, or YAML text. Without a schema the
        service proposes one from the data, which must be confirmed (`confirm_schema`) before any release.
        Returns the API's answer: {"dataset": {...}, "issues": [...]}.
        """
        form: dict[str, str] = {"name": name}
        for key, value in (("epsilon_budget", epsilon_budget), ("delta_budget", delta_budget)):
            if value is not None:
                form[key] = str(value)
        if description:
            form["description"] = description
        for key, doc in (("schema", schema), ("policy", policy)):
            text = _document_text(doc, key)
            if text is not None:
                form[key] = text
        if isinstance(data, pd.DataFrame):
            buf = io.BytesIO()
            data.to_parquet(buf, index=False)
            return dict(self.post("/datasets", data=form, files={"file": (f"{name}.parquet", buf.getvalue())}))
        path = Path(data)
        with open(path, "rb") as fh:
            return dict(self.post("/datasets", data=form, files={"file": (path.name, fh)}))

    def datasets(self) -> pd.DataFrame:
        """The datasets this account may see, one row each (budgets as floats)."""
        rows = []
        for d in self.get("/datasets")["datasets"]:
            budget = d.get("budget") or {}
            rows.append(
                {
                    **d,
                    "epsilon_budget": _number(budget.get("epsilon")),
                    "delta_budget": _number(budget.get("delta")),
                }
            )
        columns = [
            "id",
            "name",
            "description",
            "schema_confirmed",
            "schema_version",
            "epsilon_budget",
            "delta_budget",
            "created_at",
        ]
        return _frame(rows, columns)

    def dataset(self, name: str | int) -> dict[str, Any]:
        """One dataset as the API shows it to this account, with its ledger summary."""
        return dict(self.get(f"/datasets/{_ref(name)}")["dataset"])

    def confirm_schema(self, name: str | int, schema: SchemaLike, note: str | None = None) -> dict[str, Any]:
        """Confirm the public schema of a dataset (stewards). Returns {"dataset": {...}, "issues": [...]}."""
        value: Any = dict(schema) if isinstance(schema, Mapping) else _document_text(schema, "schema")
        body: dict[str, Any] = {"schema": value}
        if note:
            body["note"] = note
        return dict(self.call("PUT", f"/datasets/{_ref(name)}/schema", json=body).json())

    def grant(self, name: str | int, user: str) -> dict[str, Any]:
        """Let `user` (an analyst's username) see the dataset and request releases of it (stewards)."""
        return dict(self.post(f"/datasets/{_ref(name)}/grants", {"user": user})["dataset"])

    def revoke(self, name: str | int, user: str) -> bool:
        """Take `user`'s access to the dataset away (stewards); False if they had none."""
        return bool(self.call("DELETE", f"/datasets/{_ref(name)}/grants/{_ref(user)}").json()["revoked"])

    def ledger(self, name: str | int) -> pd.DataFrame:
        """The dataset's privacy ledger: one row per entry (reserve, spend, release), costs as floats.

        An analyst sees their own entries. The summary (budget, spent, reserved, remaining, guarantee)
        is in the frame's `attrs["summary"]`, and the service's text rendering in `attrs["text"]`.
        """
        out = self.get(f"/datasets/{_ref(name)}/ledger")
        summary = dict(out["ledger"])
        history = summary.pop("history")
        rows = [{**h, **{k: _number(h.get(k)) for k in ("epsilon", "delta", "rho")}} for h in history]
        columns = ["id", "job_id", "action", "method", "epsilon", "delta", "rho", "requester", "note", "created_at"]
        frame = _frame(rows, columns)
        frame.attrs["summary"] = summary
        frame.attrs["text"] = out["text"]
        return frame

    # ----- releases -------------------------------------------------------------------------------------
    def request(
        self,
        dataset: str | int,
        method: str,
        epsilon: float | None = None,
        delta: float | None = None,
        rows: int | None = None,
        target: str | None = None,
        options: dict[str, Any] | None = None,
        *,
        kind: str | None = None,
        rebalance: str | None = None,
        purpose: str | None = None,
        comment: str | None = None,
    ) -> Release:
        """Ask for a release of `dataset` by `method` (see `methods()`); its cost is reserved at once.

        Returns the queued `Release`; `wait()` follows it. A request over the budget or against the
        dataset's policy raises `Refused` and reserves nothing. `purpose` says what the release is for
        (`comment` is its older name: give one of the two).
        """
        body: dict[str, Any] = {"dataset": dataset, "method": method, "options": dict(options or {})}
        for key, value in (
            ("epsilon", epsilon),
            ("delta", delta),
            ("rows", rows),
            ("target", target),
            ("kind", kind),
            ("rebalance", rebalance),
            ("purpose", purpose),
            ("comment", comment),
        ):
            if value is not None:
                body[key] = value
        return Release(self, self.post("/releases", body)["release"])

    def release(self, release_id: int) -> Release:
        """One release, as this account may see it."""
        return Release(self, self.get(f"/releases/{int(release_id)}")["release"])

    def releases(self, status: str | None = None, dataset: str | int | None = None) -> pd.DataFrame:
        """The releases this account may see, one row each; filter by `status` or `dataset`."""
        params = {k: str(v) for k, v in (("status", status), ("dataset", dataset)) if v is not None}
        rows = [
            {**r, "dataset": (r.get("dataset") or {}).get("name")}
            for r in self.get("/releases", params=params)["releases"]
        ]
        columns = [
            "id",
            "dataset",
            "requester",
            "kind",
            "method",
            "epsilon",
            "delta",
            "rows",
            "status",
            "stage",
            "progress",
            "charge",
            "created_at",
            "finished_at",
            "can_download",
        ]
        return _frame(rows, columns)
