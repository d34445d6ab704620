"""Two lanes for the report: the utility section on a second thread while the main thread computes
fidelity, privacy and the figures.

Most of the utility section's time goes to scikit-learn's compiled fits and predictions, which release
the GIL, so on two cores the report's wall time falls by about the shorter lane's; its CPU time stays
the same. Results do not depend on the lanes: each section draws from its own seeded generator
(`section_rng`), reads the tables without changing them, and keeps its own warnings
(`quiet_warnings` collects per thread); matplotlib is only called from the main thread.

Only the main thread calls the caller's progress callback (a worker's callback writes to the database
through a session that is not shared across threads): the second lane's progress is held and forwarded
by the main thread at its next report, or every half second while it waits, never going backwards.
When the main thread fails (a cancelled job raises from its progress callback), the second lane's next
progress report raises, which ends its section at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TypeVar

from evaluation._common import ProgressCallback

__all__ = ["ProgressRelay", "ReportAbandoned", "SideLane"]

T = TypeVar("T")


class ReportAbandoned(RuntimeError):
    """Raised in the second lane when the main thread has given the report up."""


class ProgressRelay:
    """A progress callback that any thread may call; only the creating thread forwards."""

    def __init__(self, progress: ProgressCallback) -> None:
        self._progress = progress
        self._owner = threading.get_ident()
        self._lock = threading.Lock()
        self._pending: tuple[float, str] | None = None
        self._last = 0.0
        self.abandoned = False

    def __call__(self, fraction: float, message: str) -> None:
        if threading.get_ident() != self._owner:
            if self.abandoned:
                raise ReportAbandoned("the report was abandoned")
            with self._lock:
                self._pending = (fraction, message)
            return
        self.flush()
        self._forward(fraction, message)

    def flush(self) -> None:
        """Forward the second lane's latest report, if it made one since the last flush."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._forward(*pending)

    def _forward(self, fraction: float, message: str) -> None:
        self._last = max(self._last, fraction)
        self._progress(self._last, message)


class SideLane:
    """Runs tasks on one second thread (or at once on the caller's, when not `enabled`), with the
    BLAS / OpenMP thread limit `threads` (None: the libraries' default)."""

    def __init__(self, relay: ProgressRelay, enabled: bool, threads: int | None = None) -> None:
        self._relay = relay
        self._threads = threads
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-lane") if enabled else None

    def submit(self, fn: Callable[[], T]) -> Callable[[], T]:
        """Start `fn`; the returned function waits for its result (forwarding progress meanwhile)."""
        if self._pool is None:
            result = fn()
            return lambda: result
        future = self._pool.submit(self._limited, fn)

        def wait() -> T:
            while True:
                try:
                    return future.result(timeout=0.5)
                except TimeoutError:
                    self._relay.flush()

        return wait

    def _limited(self, fn: Callable[[], T]) -> T:
        # OpenMP's thread count is per calling thread: the caller's limit does not reach this one
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self._threads):
            return fn()

    def __enter__(self) -> SideLane:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            if exc_type is not None:
                self._relay.abandoned = True
            self._pool.shutdown(wait=True)
