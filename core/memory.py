"""Process-wide memory settings of synthgate's own processes (batch commands and workers).

Never applied in a process that hosts synthgate's code for someone else (a test runner, a notebook).
"""

from __future__ import annotations

__all__ = ["no_huge_pages_for_numpy"]


def no_huge_pages_for_numpy() -> None:
    """Stop numpy advising its new large arrays onto transparent huge pages (what
    NUMPY_MADVISE_HUGEPAGE=0 sets at numpy's import), for the arrays allocated from now on.

    Faulting in a huge page zeroes 2 MiB at once and may compact memory first. On the bench's machine a
    1M-row synth paid 0.2 to 1 s of kernel time for it when the machine's free memory was fragmented (after
    other processes had run), and nothing measurable when it was not; a 1M-row report about 0.5 s. The
    engine's fit and sample cost the same either way."""
    import numpy as np

    advise = getattr(getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None)
    if advise is not None:  # numpy 2's switch; elsewhere nothing changes
        advise(False)
