"""The zCDP conversion's own bounded minimiser gives scipy's numbers exactly, and the accounting
no longer imports scipy."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from privacy.accounting import _eps_cks, _minimize_bounded, zcdp_epsilon, zcdp_rho


def _scipy_eps_cks(rho: float, delta: float) -> float:
    from scipy.optimize import minimize_scalar

    log_inv_delta = math.log(1.0 / delta)

    def eps_at(alpha: float) -> float:
        return alpha * rho + (log_inv_delta + (alpha - 1) * math.log1p(-1.0 / alpha) - math.log(alpha)) / (alpha - 1)

    res = minimize_scalar(
        lambda la: eps_at(1.0 + math.exp(la)), bounds=(-20.0, 30.0), method="bounded", options={"xatol": 1e-12}
    )
    return float(res.fun)


RHOS = [1e-9, 1e-6, 1e-4, 0.001, 0.0149, 0.05, 0.1, 0.5, 1.0, 2.5, 10.0, 100.0, 1e4]
DELTAS = [1e-15, 1e-12, 1e-9, 1e-6, 1e-5, 1e-3, 0.05, 0.3, 0.9]


@pytest.mark.parametrize("delta", DELTAS)
def test_cks_conversion_is_scipys_bit_for_bit(delta: float) -> None:
    rng = np.random.default_rng(7)
    rhos = RHOS + list(10.0 ** rng.uniform(-8, 3, 40))
    for rho in rhos:
        assert _eps_cks(rho, delta) == _scipy_eps_cks(rho, delta), (rho, delta)


def test_accounting_results_are_scipys() -> None:
    from scipy.optimize import minimize_scalar

    def scipy_min(f, lo, hi):  # type: ignore[no-untyped-def]
        return float(minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}).fun)

    functions = [
        (lambda x: (x - 2) * x * (x + 2) ** 2, -3.0, 3.0),
        (lambda x: abs(x - 0.3), -1.0, 1.0),  # no parabola fits a kink
        (lambda x: math.cos(x), 0.0, 10.0),
        (lambda x: x, -5.0, 5.0),  # the minimum on a bound
        (lambda x: 1.0, 0.0, 1.0),  # flat
    ]
    for f, lo, hi in functions:
        assert _minimize_bounded(f, lo, hi, xatol=1e-12) == scipy_min(f, lo, hi)


def test_conversions_unchanged_for_requests() -> None:
    # the rho an (epsilon, delta) request runs at, and back, through the whole accounting
    for eps in (0.1, 0.5, 1.0, 3.0, 10.0):
        for delta in (1e-9, 1e-6, 1e-5):
            rho = zcdp_rho(eps, delta)
            assert zcdp_epsilon(rho, delta) <= eps
            assert _eps_cks(float(rho), delta) == _scipy_eps_cks(float(rho), delta)


def test_accounting_does_not_import_scipy() -> None:
    code = (
        "import sys; from privacy.accounting import zcdp_rho; zcdp_rho(1.0, 1e-9); "
        "print(any(m == 'scipy' or m.startswith('scipy.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
