"""One torch thread for the process: the GANs and VAEs (smartnoise's DPCTGAN and PATECTGAN, SDV's CTGAN,
TVAE and CopulaGAN) run on torch, whose intra-op threads spin-wait for work.

On the 2-core workers, one job at a time, torch's default of a thread per core made a DPCTGAN epoch on
27,000 rows cost about four times the CPU seconds of a single thread and take longer on the wall, and
both varied with the load of the other processes (bench/results/dpctgan-threads-2026-12-07.md). One
thread keeps a fit's time, and with it the time model (privacy/estimate.py), steady. The worker sets it
once per process before any job (workers/tasks.py), the offline CLI before fitting a heavy method
(webapp/cli/offline.py). The privacy accounting does not depend on it; only the speed changes, and
the last bits of a model's weights, through the order of floating-point sums.
"""

from __future__ import annotations

import logging

__all__ = ["one_torch_thread"]

log = logging.getLogger(__name__)


def one_torch_thread() -> bool:
    """Set torch's intra-op and inter-op threads to one; False when torch is not installed.

    Torch accepts the inter-op setting only before its first parallel work: set later, the inter-op
    pool (idle unless a model forks work) keeps its size and the intra-op threads, which do the
    spinning, are still set.
    """
    try:
        import torch
    except ImportError:
        return False
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # torch already ran parallel work in this process
        log.debug("torch's inter-op threads were already started; left at %s", torch.get_num_interop_threads())
    return True
