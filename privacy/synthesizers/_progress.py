"""Progress a requester may follow: fixed milestones, nothing learned from the table.

The progress of a fit is shown to the requester before any steward has approved
the release, so it must not carry a value learned from the rows: not the number
of rows, nor anything that follows from it (epochs, batches, teachers), nor the
length of an adaptive loop (AIM's rounds, an early stop). `Milestones` turns the
fraction a loop reports into the fixed milestones 0.1, 0.2, ... 0.9 under one
fixed message, each reported once and in order, whatever the data; of the
loop's own messages it forwards only those named as public (fixed texts the
loop reports once, unconditionally, at a fixed fraction).
"""

from __future__ import annotations

from collections.abc import Iterable

from privacy.synthesizers.base import ProgressCallback

__all__ = ["Milestones"]

_STEPS = 10


class Milestones:
    """Report a stage's progress as the milestones between `start` and `end`, under `message`.

    Call it with the stage's own fraction done (0 to 1, or the absolute fraction
    when `absolute` is set); call `finish()` at the end of the stage so that every
    milestone is reported even when the loop ended early.
    """

    def __init__(
        self,
        progress: ProgressCallback,
        message: str,
        start: float = 0.05,
        end: float = 0.95,
        *,
        absolute: bool = False,
        public: Iterable[str] = (),
    ) -> None:
        self._progress = progress
        self._message = message
        self._start = float(start)
        self._end = float(end)
        self._absolute = absolute
        self._done = 0
        self._public = frozenset(public)

    def __call__(self, fraction: float, message: str = "") -> None:
        """The stage is `fraction` done; the loop's message is forwarded only if it is a public one."""
        raw = f = float(fraction)
        if self._absolute:
            span = self._end - self._start
            f = (f - self._start) / span if span > 0 else 1.0
        reached = min(max(int(f * _STEPS + 1e-9), 0), _STEPS - 1)
        while self._done < reached:
            self._done += 1
            self._progress(round(self._start + (self._end - self._start) * self._done / _STEPS, 6), self._message)
        if message in self._public:
            self._progress(round(raw if self._absolute else self._start + (self._end - self._start) * f, 6), message)

    def finish(self) -> None:
        """Report the milestones not reached yet."""
        self(1.0 if not self._absolute else self._end)
