"""A service database on a SQLite file for unit tests of the release path, run in this process:
stewards and an analyst, one real table registered and granted to the analyst."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from core import releases
from core.auth import create_user
from core.db import write_session
from core.migrate import upgrade
from core.models import User
from core.settings import Settings
from core.storage import get_storage

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "pums": (ROOT / "tests/data/pums/PUMS.csv", ROOT / "tests/data/pums/schema.yaml"),
    "penguins": (ROOT / "tests/data/penguins/penguins.csv", ROOT / "tests/data/penguins/schema.yaml"),
}


def release_db(tmp_path: Path, table: str, epsilon_budget: str, stewards: int = 2) -> Settings:
    """Migrate a fresh database under `tmp_path`; create `steward` (and `steward2`, ...) and `analyst`;
    register `table` as the steward with this budget (delta 1e-6) and grant it to the analyst."""
    settings = Settings.from_env(environ={}, data_dir=str(tmp_path))
    upgrade(settings)
    csv, schema = TABLES[table]
    with write_session(settings) as s:
        steward = create_user(s, "steward", "steward", "password-123")
        for n in range(2, stewards + 1):
            create_user(s, f"steward{n}", "steward", "password-123")
        analyst = create_user(s, "analyst", "analyst", "password-123")
        ds, _ = releases.register_dataset(
            s,
            get_storage(settings),
            steward,
            upload_path=csv,
            filename=csv.name,
            name=table,
            schema_text=schema.read_text(),
            epsilon_budget=epsilon_budget,
            delta_budget="1e-6",
            settings=settings,
        )
        releases.grant(s, steward, ds, analyst.username)
    return settings


def user(s, name: str) -> User:
    return s.execute(select(User).where(User.username == name)).scalar_one()
