"""`core.memory`: numpy's advice of transparent huge pages is turned off (and only where asked)."""

from __future__ import annotations

import numpy as np

from core.memory import no_huge_pages_for_numpy


def test_numpys_huge_page_advice_is_turned_off() -> None:
    switch = np._core.multiarray._set_madvise_hugepage  # returns the setting it replaces
    before = switch(True)
    try:
        no_huge_pages_for_numpy()
        assert switch(True) is False  # what no_huge_pages_for_numpy had set
    finally:
        switch(before)


def test_workers_turn_it_off_in_each_pool_process(monkeypatch) -> None:
    import workers.tasks as tasks

    calls: list[str] = []
    monkeypatch.setattr(tasks, "dispose_engines", lambda: calls.append("dispose"))
    monkeypatch.setattr(tasks, "no_huge_pages_for_numpy", lambda: calls.append("no huge pages"))
    monkeypatch.setattr(tasks, "_warm_up", lambda: calls.append("warm up"))
    monkeypatch.setattr(tasks, "serves_heavy_methods", lambda: False)
    tasks._after_fork()
    assert calls == ["dispose", "no huge pages", "warm up"]
