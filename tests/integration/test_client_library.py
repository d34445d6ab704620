"""The Python client (synthgate_client) against a live service: gunicorn, a Celery worker, PostgreSQL and Redis.

One steward registers the penguins table, an analyst requests an MST release and follows it, a second
steward approves it, the analyst downloads, verifies and reads it. The README's example is run as written.
"""

from __future__ import annotations

import io
import itertools
import re
import shutil
import socket
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from synthgate_client import BundleInvalid, Client, Conflict, NotFound, Progress, Refused, Unreachable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "tests" / "data" / "penguins"
SCHEMA_COLUMNS = list(yaml.safe_load((PENGUINS / "schema.yaml").read_text())["columns"])


def _tampered(bundle: Path, out: Path) -> Path:
    """The bundle with one synthetic row changed in data.csv and everything else (the signed manifest too)
    copied as it was."""
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "data.csv":
                lines = data.split(b"\n")
                lines[1] = lines[1] + b"0"
                data = b"\n".join(lines)
            dst.writestr(info.filename, data)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_register_request_wait_approve_download_verify(service_factory, tmp_path: Path) -> None:
    svc = service_factory("redis-postgres")
    svc.start_web()
    svc.start_worker()
    steward = Client(svc.url, svc.tokens["steward"])
    reviewer = Client(svc.url, svc.tokens["steward2"])
    analyst = Client(svc.url, svc.tokens["analyst"])
    assert analyst.me()["role"] == "analyst"
    methods = analyst.methods()
    assert {"mst", "aim", "dp-copula"} <= set(methods["name"]) and bool(methods.set_index("name").loc["mst", "dp"])

    out = steward.register(
        PENGUINS / "penguins.csv",
        "penguins-client",
        schema=PENGUINS / "schema.yaml",
        epsilon_budget=4,
        delta_budget=1e-6,
        description="Palmer penguins",
    )
    assert out["dataset"]["name"] == "penguins-client" and out["dataset"]["schema_confirmed"] is True
    assert out["dataset"]["budget"] == {"epsilon": "4", "delta": "0.000001"}
    steward.grant("penguins-client", svc.tokens["analyst:username"])

    listed = analyst.datasets()
    assert isinstance(listed, pd.DataFrame)
    assert listed[["name", "epsilon_budget", "delta_budget"]].to_dict("records") == [
        {"name": "penguins-client", "epsilon_budget": 4.0, "delta_budget": 1e-6}
    ]
    assert set(analyst.dataset("penguins-client")["schema"]["columns"]) == set(SCHEMA_COLUMNS)

    # a request over the budget is refused with the API's own code, and reserves nothing
    with pytest.raises(Refused) as refused:
        analyst.request("penguins-client", "mst", epsilon=5, delta=1e-7, rows=100)
    assert refused.value.code == "budget_exceeded" and refused.value.status == 409
    assert "budget" in refused.value.message
    assert analyst.ledger("penguins-client").empty

    release = analyst.request("penguins-client", "mst", epsilon=1.0, delta=1e-7, rows=200, purpose="colony survey")
    assert release.status == "queued" and release.dataset == "penguins-client" and release.method == "mst"
    assert release.view["purpose"] == "colony survey"
    events: list[Progress] = []
    assert release.wait(progress=events.append, timeout=600, interval=0.1) is release
    assert release.status == "awaiting_approval", svc.worker_logs()
    assert events, "the progress callback was never called"
    assert all(e.release_id == release.id for e in events)
    assert "running" in [e.status for e in events]
    assert events[-1].status == "awaiting_approval"
    fractions = [e.fraction for e in events if e.status == "running"]
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)
    assert [e.elapsed for e in events] == sorted(e.elapsed for e in events)
    # consecutive events differ: an unchanged poll is not reported
    keys = [(e.status, e.stage, round(e.fraction, 4), e.message) for e in events]
    assert all(a != b for a, b in itertools.pairwise(keys))

    # the analyst may not approve, and the bundle does not exist before approval
    with pytest.raises(Refused) as forbidden:
        release.approve(comment="mine")
    assert forbidden.value.code == "forbidden" and forbidden.value.status == 403
    with pytest.raises(Conflict) as early:
        release.download(tmp_path)
    assert early.value.code == "not_approved"
    assert not list(tmp_path.glob("*.zip*"))

    review = reviewer.release(release.id)
    override = "reviewed for the test" if review.view["gate"]["overall"] == "fail" else None
    assert review.approve(comment="looks right", override=override).status == "approved"
    with pytest.raises(Conflict) as again:
        review.approve(comment="twice")
    assert again.value.code == "conflict"

    path = release.download(tmp_path)
    assert path == tmp_path / f"synthgate-release-{release.id}.zip" and path.is_file()
    check = release.verify()
    assert check.ok and check.signature_checked and check.manifest["job_id"] == release.id
    data = release.synthetic()
    assert isinstance(data, pd.DataFrame)
    assert list(data.columns) == SCHEMA_COLUMNS
    assert len(data) == check.manifest["rows"] > 0
    with zipfile.ZipFile(path) as zf:
        pd.testing.assert_frame_equal(data, pd.read_parquet(io.BytesIO(zf.read("data.parquet"))))
    report = release.report()
    assert report["audience"] == "public" and report["sections"]  # the requester sees the public sections
    assert release.refresh().status == "approved"

    releases = analyst.releases()
    assert releases[["id", "dataset", "method", "status"]].to_dict("records") == [
        {"id": release.id, "dataset": "penguins-client", "method": "mst", "status": "approved"}
    ]
    ledger = analyst.ledger("penguins-client")
    assert list(ledger["action"]) == ["reserve", "spend"] and set(ledger["job_id"]) == {release.id}
    assert ledger["epsilon"].tolist() == [1.0, 1.0] and ledger["delta"].tolist() == [1e-7, 1e-7]
    assert ledger.attrs["summary"]["dataset"] == "penguins-client" and "guarantee" in ledger.attrs["text"]

    # a bundle changed after signing fails verification, and its data is not handed over
    bad = _tampered(path, tmp_path / "tampered.zip")
    with pytest.raises(BundleInvalid) as invalid:
        release.verify(bad)
    assert invalid.value.problems == ["data.csv does not match its SHA-256 in the manifest"]
    with pytest.raises(BundleInvalid):
        release.synthetic(bad)
    # signed by another key: refused too
    other = Client(svc.url, svc.tokens["analyst"])
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    stranger = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(BundleInvalid, match="signature does not match"):
        other.release(release.id).verify(path, public_key=stranger)

    # unknown releases and datasets are not found; another analyst cannot tell they exist
    with pytest.raises(NotFound) as missing:
        analyst.release(release.id + 1000)
    assert missing.value.code == "not_found" and missing.value.status == 404
    with pytest.raises(NotFound):
        Client(svc.url, svc.tokens["analyst2"]).release(release.id)
    with pytest.raises(NotFound):
        analyst.ledger("no-such-dataset")

    # a cancelled release stops at once; its reservation is given back
    queued = analyst.request("penguins-client", "mst", epsilon=0.5, delta=1e-7, rows=100)
    outcome = queued.cancel("asked for the wrong rows")
    assert outcome["was"] in ("queued", "running")
    assert queued.wait(timeout=30).cancelled and queued.status == "failed"

    # a rejected release cannot be downloaded, and its cost stays charged
    second = analyst.request("penguins-client", "mst", epsilon=0.5, delta=1e-7, rows=50)
    assert second.wait(timeout=600, interval=0.2).status == "awaiting_approval", svc.worker_logs()
    assert reviewer.release(second.id).reject("not needed after all").status == "rejected"
    assert second.refresh().status == "rejected" and second.view["decision"]["comment"] == "not needed after all"
    with pytest.raises(Conflict) as rejected:
        second.download(tmp_path / "rejected.zip")
    assert rejected.value.code == "not_approved" and not (tmp_path / "rejected.zip").exists()
    assert "spend" in set(analyst.ledger("penguins-client").query("job_id == @second.id")["action"])

    # a grant lets another analyst see the dataset, and its revocation takes that back
    other_analyst = Client(svc.url, svc.tokens["analyst2"])
    assert (
        svc.tokens["analyst2:username"] in steward.grant("penguins-client", svc.tokens["analyst2:username"])["grants"]
    )
    assert other_analyst.dataset("penguins-client")["name"] == "penguins-client"
    assert steward.revoke("penguins-client", svc.tokens["analyst2:username"]) is True
    assert steward.revoke("penguins-client", svc.tokens["analyst2:username"]) is False
    with pytest.raises(NotFound):
        other_analyst.dataset("penguins-client")

    # nothing listening: unreachable, naming the URL
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(Unreachable) as down:
        Client(url, svc.tokens["analyst"], timeout=5).datasets()
    assert down.value.url == url and url in str(down.value) and down.value.status is None

    # a wrong token is refused; a client closes its connections when its block ends
    with Client(svc.url, "sg_not-a-token") as wrong, pytest.raises(Refused) as denied:
        wrong.datasets()
    assert denied.value.status == 401 and denied.value.code == "unauthorized"


def _readme_example() -> str:
    """The python code blocks of the README's "## Python client" section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python client\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "the README's Python client section has no python code block"
    return "\n".join(blocks)


def test_the_readme_example_runs_as_written(service_factory, tmp_path: Path, monkeypatch, capsys) -> None:
    # its own embedded database: the example's dataset name is its own
    svc = service_factory("embedded")
    svc.start_web()
    svc.start_worker()
    # the example's relative paths, from a copy of the repository's test data
    shutil.copytree(PENGUINS, tmp_path / "tests" / "data" / "penguins")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNTHGATE_URL", svc.url)
    monkeypatch.setenv("STEWARD_TOKEN", svc.tokens["steward"])
    monkeypatch.setenv("REVIEWER_TOKEN", svc.tokens["steward2"])
    monkeypatch.setenv("ANALYST_TOKEN", svc.tokens["analyst"])
    monkeypatch.delenv("SYNTHGATE_TOKEN", raising=False)
    code = _readme_example()
    assert 'os.environ["ANALYST_TOKEN"]' in code  # the example reads its tokens from the environment
    scope: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(code, "README.md (Python client)", "exec"), scope)

    out, err = capsys.readouterr()
    # what the example left behind and printed is what the README says it shows
    assert re.search(r"^budget_exceeded - .*budget", out, flags=re.MULTILINE), out
    assert re.search(r"^0 +penguins +True +4\.0 +0\.000001$", out, flags=re.MULTILINE), out
    assert re.search(r"^\d+ rows, approved by steward2-", out, flags=re.MULTILINE), out
    assert "100%  awaiting_approval" in err and err.endswith("\n"), err
    release = scope["release"]
    df = scope["df"]
    assert release.refresh().status == "approved"  # type: ignore[attr-defined]
    assert isinstance(df, pd.DataFrame) and list(df.columns) == SCHEMA_COLUMNS and len(df) > 0
    assert (tmp_path / "penguins-release.zip").is_file()
    history = Client(svc.url, svc.tokens["steward"]).ledger("penguins")
    assert list(history["action"]) == ["reserve", "spend"]
    assert set(history["job_id"]) == {release.id}  # type: ignore[attr-defined]
