"""The retention sweep: the raw data of a dataset whose policy's `retention_days` have passed since it
was registered is erased (core/erasure.py `erase_expired`), as the `system` actor, audited like a
steward's erasure; files a stopped release wrote after an erasure are removed (`remove_leftovers`), and
so are register-form uploads kept past their expiry (core/staging.py).
The worker's Reaper runs it among its sweeps, at most once every `EVERY_SECONDS`."""

from __future__ import annotations

import time
from collections.abc import Callable

from core import staging
from core.erasure import erase_expired, remove_leftovers
from core.settings import Settings
from core.storage import get_storage

__all__ = ["EVERY_SECONDS", "retention_sweep"]

EVERY_SECONDS = 300.0  # retention is counted in days: a pass every few minutes is on time


def retention_sweep(settings: Settings, every: float = EVERY_SECONDS) -> Callable[[], list[str]]:
    """The sweep for the Reaper: the first call runs at once, later calls only when `every` seconds passed.
    Each call returns the names of the datasets erased (none when it did not run)."""
    last: list[float] = []

    def sweep() -> list[str]:
        now = time.monotonic()
        if last and now - last[0] < every:
            return []
        last[:] = [now]
        erased = erase_expired(settings)
        remove_leftovers(settings)
        staging.sweep(get_storage(settings))
        return erased

    return sweep
