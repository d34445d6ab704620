"""Registration above SYNTHGATE_BATCH_READ_ABOVE_MB reads the table in batches and records what reading it whole
records: rows, hash, schema, issues; without a schema it says the proposal came from the first rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import releases
from core.auth import create_user
from core.db import dispose_engines, write_session
from core.migrate import upgrade
from core.settings import Settings
from core.storage import get_storage, sha256_file
from tests.conftest import ADULT

SCHEMA_TEXT = (ADULT.parent / "schema.yaml").read_text()


def _register(tmp_path: Path, batch_above_mb: int, schema_text: str | None) -> tuple[dict, list[dict]]:
    settings = Settings.from_env(
        environ={}, data_dir=str(tmp_path / f"d{batch_above_mb}{bool(schema_text)}"), batch_read_above_mb=batch_above_mb
    )
    upgrade(settings)
    try:
        with write_session(settings) as s:
            steward = create_user(s, "steward", "steward", "password-123")
            ds, issues = releases.register_dataset(
                s,
                get_storage(settings),
                steward,
                upload_path=ADULT,
                filename="adult.csv",
                name="adult",
                schema_text=schema_text,
                settings=settings,
            )
            row = {
                "rows": ds.n_rows,
                "sha256": ds.file_sha256,
                "schema": ds.public_schema,
                "confirmed": ds.schema_confirmed,
            }
        assert get_storage(settings).size(f"datasets/{ds.id}/raw.csv") == ADULT.stat().st_size
        return row, issues
    finally:
        dispose_engines()


def test_with_a_schema_batches_record_what_the_whole_table_records(tmp_path: Path) -> None:
    whole, whole_issues = _register(tmp_path, 1000, SCHEMA_TEXT)
    batched, batched_issues = _register(tmp_path, 0, SCHEMA_TEXT)
    assert batched == whole
    assert whole["sha256"] == sha256_file(ADULT) and whole["confirmed"]
    assert sorted((i["column"], i["code"], i["message"]) for i in batched_issues) == sorted(
        (i["column"], i["code"], i["message"]) for i in whole_issues
    )


@pytest.mark.parametrize("batch_above_mb", [0, 1000])
def test_without_a_schema_a_batched_proposal_says_it_read_the_first_rows(tmp_path: Path, batch_above_mb: int) -> None:
    row, issues = _register(tmp_path, batch_above_mb, None)
    assert not row["confirmed"] and row["rows"] == 48_842
    assert ("proposed_from_first_rows" in {i["code"] for i in issues}) == (batch_above_mb == 0)
