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

`ProcessLane` is the second lane as a forked child process instead of a thread: it shares no GIL with
the main thread, which matters where both lanes run Python (a release job's report on a table of tens
of thousands of rows). The child computes on its copy-on-write view of the tables and sends its progress
and its result back through a pipe; the main thread's progress callback is still the only one called.
The child never touches the parent's connections or files: it writes to its pipe and leaves with
`os._exit`, and it dies with its parent (Linux's parent-death signal). Should the child fail to deliver
a result (killed, out of memory, an error outside the task, or no word from it for `STALL_SECONDS`),
the task runs again on the main thread, so a report never depends on the child.

A forked lane only pays where a core is idle: two release jobs running at once on a two-core machine
would otherwise become four busy processes. `CoreSlot` counts the host's busy cores: a release job
holds one while it runs (workers/tasks.py `busy_core`), and `ProcessLane` forks only when it can take
another; else the task runs at once on the caller's thread, as with one lane.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import select
import signal
import stat
import struct
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

from evaluation._common import ProgressCallback

__all__ = ["CoreSlot", "ProcessLane", "ProgressRelay", "ReportAbandoned", "SideLane", "busy_core", "can_fork"]

T = TypeVar("T")
logger = logging.getLogger(__name__)


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
        self._polls: list[Callable[[], tuple[float, str] | None]] = []  # forked lanes' latest reports
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
        for poll in self._polls:
            latest = poll()
            if latest is not None:
                with self._lock:
                    self._pending = latest
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._forward(*pending)

    def _forward(self, fraction: float, message: str) -> None:
        self._last = max(self._last, fraction)
        self._progress(self._last, message)

    def _divert(self, send: Callable[[float, str], None]) -> None:
        """In a forked child: every report goes to `send` (the pipe to the parent), from any thread."""
        self._progress = send
        self._owner = threading.get_ident()
        self._pending = None
        self._polls = []
        self._lock = threading.Lock()


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


STALL_SECONDS = 600.0  # no message from a forked lane for this long: it is taken for hung
_HEADER = struct.Struct("!Q")


def can_fork() -> bool:
    """Whether the second lane can be a forked process here (Linux, where `ProcessLane` ties the child's
    life to its parent's)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def _die_with_parent(parent: int) -> None:
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc: the check below still holds
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)


def _send(fd: int, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


class CoreSlot:
    """One of the host's cores, held while this process keeps it busy: an exclusive `flock` on one of as
    many files as the process may run on (in $SYNTHGATE_CORE_SLOTS, else a folder of this user's in the
    temporary directory), released on `release` or when the process ends, however it ends."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @staticmethod
    def _folder() -> str:
        folder = os.environ.get("SYNTHGATE_CORE_SLOTS") or os.path.join(
            tempfile.gettempdir(), f"synthgate-cores-{os.getuid()}"
        )
        os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():  # a link, or another user's: not ours
            raise PermissionError(folder)
        return folder

    @classmethod
    def cores(cls) -> int:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    @classmethod
    def take(cls) -> CoreSlot | None:
        """A free core's slot, or None when every core is held (or the slots cannot be counted here)."""
        import fcntl

        try:
            folder = cls._folder()
            for i in range(cls.cores()):
                fd = os.open(os.path.join(folder, f"core-{i}"), os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                return cls(fd)
        except OSError:
            return None
        return None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock goes with the last descriptor of it (a forked child's too)
            self._fd = None


@contextlib.contextmanager
def busy_core() -> Iterator[CoreSlot | None]:
    """Hold a core's slot while the block runs (None: every core was already held; the block runs anyway)."""
    slot = CoreSlot.take()
    try:
        yield slot
    finally:
        if slot is not None:
            slot.release()


class _Child:
    """The parent's end of one forked task: its pid, pipe and what it has sent so far."""

    def __init__(self, pid: int, fd: int, slot: CoreSlot) -> None:
        self.pid, self.fd, self.slot = pid, fd, slot
        self.buffer = bytearray()
        self.result: tuple[str, Any] | None = None
        self.heard = time.monotonic()
        self.closed = self.reaped = False

    def read(self, timeout: float = 0.0) -> tuple[float, str] | None:
        """Read what the child sent, waiting at most `timeout` seconds for it; keep the result, and
        return the latest progress report among what was read (None if none)."""
        latest = None
        while not self.closed and select.select([self.fd], [], [], timeout)[0]:
            timeout = 0.0
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                self.closed = True
                break
            self.heard = time.monotonic()
            self.buffer += chunk
            while len(self.buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(self.buffer)
                if len(self.buffer) < _HEADER.size + size:
                    break
                kind, payload = pickle.loads(bytes(self.buffer[_HEADER.size : _HEADER.size + size]))
                del self.buffer[: _HEADER.size + size]
                if kind == "progress":
                    latest = payload
                else:
                    self.result = (kind, payload)
        return latest

    def end(self) -> None:
        """Kill the child if it still runs, reap it and close the pipe (once)."""
        if not self.reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.reaped = True
            self.slot.release()
        if not self.closed:
            os.close(self.fd)
            self.closed = True


class ProcessLane:
    """Runs each task in a forked child while the caller goes on (see the module docstring); the task's
    result comes back pickled, so it must be picklable. A task the child could not finish runs again on
    the caller's thread when it is waited for."""

    def __init__(self, relay: ProgressRelay, threads: int | None = None) -> None:
        self._relay = relay
        self._threads = threads
        self._children: list[_Child] = []

    def submit(self, fn: Callable[[], T]) -> Callable[[], T]:
        slot = CoreSlot.take()
        if slot is None:  # no idle core to lend: one lane
            result = fn()
            return lambda: result
        try:
            read_fd, write_fd = os.pipe()
        except BaseException:
            slot.release()
            raise
        parent = os.getpid()
        # the objects alive now out of the collector's sight in the child: its collections neither walk the
        # parent's heap nor write to (and so copy) its pages
        gc.freeze()
        try:
            with warnings.catch_warnings():
                # JAX, once loaded (by a method of an earlier job), warns at every fork that its threads
                # make a child that uses JAX deadlock; this child never calls it
                warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
                pid = os.fork()
        except BaseException:
            gc.unfreeze()
            os.close(read_fd)
            os.close(write_fd)
            slot.release()
            raise
        if pid != 0:
            gc.unfreeze()
        if pid == 0:  # pragma: no cover - the child's lines are measured in its own process
            os.close(read_fd)
            self._run_child(fn, write_fd, parent)
        os.close(write_fd)
        child = _Child(pid, read_fd, slot)
        self._children.append(child)
        self._relay._polls.append(child.read)  # its progress, forwarded at the main thread's next report

        def wait() -> T:
            while child.result is None and not child.closed:
                select.select([child.fd], [], [], 0.5)
                self._relay.flush()  # reads the pipe (child.read) and forwards the child's progress
                if time.monotonic() - child.heard > STALL_SECONDS:
                    break
            self._relay._polls.remove(child.read)
            child.end()
            if child.result is not None and child.result[0] == "result":
                return child.result[1]  # type: ignore[no-any-return]
            reason = child.result[1] if child.result is not None else "it ended without a result"
            logger.warning("report lane process failed (%s); running its task here", reason)
            return fn()

        return wait

    def _run_child(self, fn: Callable[[], Any], fd: int, parent: int) -> None:  # pragma: no cover - in the child
        code = 0
        try:
            _die_with_parent(parent)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1):
                signal.signal(sig, signal.SIG_DFL)
            sent = [0.0]

            def send(fraction: float, message: str) -> None:  # at most 5 a second: the parent reads them late
                if time.monotonic() - sent[0] >= 0.2:
                    sent[0] = time.monotonic()
                    _send(fd, ("progress", (fraction, message)))

            self._relay._divert(send)
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=self._threads):
                value = fn()
            _send(fd, ("result", value))
        except BaseException as exc:  # noqa: BLE001 - whatever it is, the parent hears of it and runs the task
            code = 1
            with contextlib.suppress(BaseException):
                _send(fd, ("error", f"{type(exc).__name__}: {exc}"))
        finally:
            os._exit(code)

    def __enter__(self) -> ProcessLane:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for child in self._children:
            child.end()
        self._children.clear()
