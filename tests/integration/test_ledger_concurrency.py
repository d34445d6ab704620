"""Fifty simultaneous requests from separate processes never overspend, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import select

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
N_PROCESSES = 50
ROUNDS = 3


def _request(env: dict, dataset: str, username: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    from core.db import dispose_engines, write_session
    from core.models import User
    from core.releases import ReleaseRequest, request_release
    from core.settings import Settings
    from privacy.errors import BudgetExceeded

    dispose_engines()  # never reuse the parent's connections
    settings = Settings.from_env(environ=env)
    barrier.wait(timeout=120)
    try:
        with write_session(settings) as s:
            user = s.execute(select(User).where(User.username == username)).scalar_one()
            req = ReleaseRequest(dataset=dataset, method="dp-marginals", epsilon=0.1, delta=0, rows=10)
            request_release(s, user, req, settings)
        results.put("accepted")
    except BudgetExceeded:
        results.put("refused")
    except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
        results.put(f"error: {exc!r}")


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_fifty_simultaneous_requests_accept_exactly_ten(db, tmp_path, request):
    from core import releases
    from core.auth import create_user
    from core.db import dispose_engines, session_scope, write_session
    from core.ledger import committed_costs
    from core.migrate import upgrade
    from core.models import Dataset, LedgerEntry
    from core.settings import Settings
    from core.storage import get_storage

    overrides = {"data_dir": str(tmp_path)}
    if db == "postgresql":
        overrides["database_url"] = request.getfixturevalue("pg_url")
    settings = Settings.from_env(environ={}, **overrides)
    upgrade(settings)
    suffix = tmp_path.name[-8:].replace("_", "")
    with write_session(settings) as s:
        steward = create_user(s, f"st-{suffix}", "steward", "password-123")
        analyst = create_user(s, f"an-{suffix}", "analyst", "password-123")
        names = []
        for r in range(ROUNDS):
            ds, _ = releases.register_dataset(
                s,
                get_storage(settings),
                steward,
                upload_path=ROOT / "tests/data/pums/PUMS.csv",
                filename="PUMS.csv",
                name=f"pums-{suffix}-{r}",
                schema_text=(ROOT / "tests/data/pums/schema.yaml").read_text(),
                epsilon_budget="1",
                delta_budget="0",
                settings=settings,
            )
            releases.grant(s, steward, ds, analyst.username)
            names.append(ds.name)
        analyst_name = analyst.username
    dispose_engines()

    ctx = mp.get_context("fork")
    env = settings.env()
    for name in names:
        barrier = ctx.Barrier(N_PROCESSES)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=_request, args=(env, name, analyst_name, barrier, results)) for _ in range(N_PROCESSES)
        ]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=300) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        errors = [o for o in outcomes if o.startswith("error")]
        assert not errors, errors[:3]
        assert outcomes.count("accepted") == 10, outcomes
        assert outcomes.count("refused") == 40

        with session_scope(settings) as s:
            ds = s.execute(select(Dataset).where(Dataset.name == name)).scalar_one()
            spent, reserved = committed_costs(s, ds.id)
            total = sum((c.epsilon for c in spent + reserved), Fraction(0))
            assert total == Fraction(1)  # exactly the budget, never above
            n_rows = len(list(s.execute(select(LedgerEntry).where(LedgerEntry.dataset_id == ds.id)).scalars()))
            assert n_rows == 10
    dispose_engines()
