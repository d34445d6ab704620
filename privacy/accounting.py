"""DP accounting: zCDP conversions and the budget gate, as pure functions.

Two accountants are kept side by side:

* basic sequential composition: epsilons add, deltas add. Always valid.
* zCDP composition: rhos add, and the total rho converts to (epsilon, delta)
  at the dataset's delta. Valid only when every charge is zCDP (MST, AIM,
  Gaussian mechanisms); then it is usually much tighter.

The gate accepts a new charge when either accountant says the total still fits
the budget (zCDP only when every charge supports it). Non-DP charges
(epsilon = infinity) are tracked apart: they do not take DP budget, but once
one exists the dataset has no formal guarantee and every statement says so.

Irrational results (square roots, logs) are rounded in the safe direction:
epsilons up, rhos down, to `PRECISION` decimal places.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final

from privacy.budget import PrivacyBudget, PrivacyCost, format_value
from privacy.errors import BudgetExceeded, InvalidPrivacyValue, PolicyViolation

__all__ = [
    "POLICY_ALLOW_NON_DP",
    "POLICY_DP_ONLY",
    "PRECISION",
    "BudgetStatus",
    "budget_status",
    "check_can_pay",
    "gaussian_sigma",
    "zcdp_epsilon",
    "zcdp_rho",
]

PRECISION = 12
_SCALE = 10**PRECISION

POLICY_DP_ONLY: Final = "dp-only"
POLICY_ALLOW_NON_DP: Final = "allow-non-dp"


def _round_up(x: float) -> Fraction:
    # one extra unit guards against the float error of the computation itself
    return Fraction(math.ceil(x * _SCALE) + 1, _SCALE)


def _round_down(x: float) -> Fraction:
    return Fraction(max(math.floor(x * _SCALE) - 1, 0), _SCALE)


def _eps_cks(rho: float, delta: float) -> float:
    """Canonne-Kamath-Steinke (2020) conversion, minimised over the Renyi order."""
    log_inv_delta = math.log(1.0 / delta)

    def eps_at(alpha: float) -> float:
        return alpha * rho + (log_inv_delta + (alpha - 1) * math.log1p(-1.0 / alpha) - math.log(alpha)) / (alpha - 1)

    # the optimum alpha is near 1 + sqrt(log(1/delta)/rho); search a wide bracket in log space
    return _minimize_bounded(lambda la: eps_at(1.0 + math.exp(la)), -20.0, 30.0, xatol=1e-12)


def _sign(x: float) -> float:
    """numpy's sign of a float: -1.0 or 1.0, a zero or nan as it is."""
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return x


def _maximum(a: float, b: float) -> float:
    """numpy's maximum of two floats: nan when either is nan."""
    if a != a or b != b:
        return math.nan
    return a if a >= b else b


def _minimize_bounded(
    func: Callable[[float], float], x1: float, x2: float, *, xatol: float, maxiter: int = 500
) -> float:
    """The minimum of `func` on [x1, x2] by Brent's bounded method: the same steps, in the same float
    arithmetic, as `scipy.optimize.minimize_scalar(func, bounds=(x1, x2), method="bounded",
    options={"xatol": xatol})`, whose `fun` it returns (so the accounting does not import scipy)."""
    sqrt_eps = math.sqrt(2.2e-16)
    golden_mean = 0.5 * (3.0 - math.sqrt(5.0))
    a, b = x1, x2
    fulc = a + golden_mean * (b - a)
    nfc, xf = fulc, fulc
    rat = e = 0.0
    x = xf
    fx = func(x)
    num = 1
    ffulc = fnfc = fx
    xm = 0.5 * (a + b)
    tol1 = sqrt_eps * abs(xf) + xatol / 3.0
    tol2 = 2.0 * tol1
    while abs(xf - xm) > (tol2 - 0.5 * (b - a)):
        golden = True
        if abs(e) > tol1:  # a parabolic fit
            golden = False
            r = (xf - nfc) * (fx - ffulc)
            q = (xf - fulc) * (fx - fnfc)
            p = (xf - fulc) * q - (xf - nfc) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = abs(q)
            r = e
            e = rat
            if (abs(p) < abs(0.5 * q * r)) and (p > q * (a - xf)) and (p < q * (b - xf)):  # acceptable
                rat = (p + 0.0) / q
                x = xf + rat
                if ((x - a) < tol2) or ((b - x) < tol2):
                    rat = tol1 * (_sign(xm - xf) + ((xm - xf) == 0))
            else:
                golden = True
        if golden:  # a golden-section step
            e = a - xf if xf >= xm else b - xf
            rat = golden_mean * e
        x = xf + (_sign(rat) + (rat == 0)) * _maximum(abs(rat), tol1)
        fu = func(x)
        num += 1
        if fu <= fx:
            if x >= xf:
                a = xf
            else:
                b = xf
            fulc, ffulc = nfc, fnfc
            nfc, fnfc = xf, fx
            xf, fx = x, fu
        else:
            if x < xf:
                a = x
            else:
                b = x
            if (fu <= fnfc) or (nfc == xf):
                fulc, ffulc = nfc, fnfc
                nfc, fnfc = x, fu
            elif (fu <= ffulc) or (fulc == xf) or (fulc == nfc):  # noqa: SIM109 (as floats, nan included)
                fulc, ffulc = x, fu
        xm = 0.5 * (a + b)
        tol1 = sqrt_eps * abs(xf) + xatol / 3.0
        tol2 = 2.0 * tol1
        if num >= maxiter:
            break
    return float(fx)


def zcdp_epsilon(rho: Fraction | float, delta: Fraction | float) -> Fraction:
    """The epsilon of a rho-zCDP mechanism at the given delta, rounded up.

    The smaller of Bun-Steinke (rho + 2 sqrt(rho log 1/delta)) and the
    Canonne-Kamath-Steinke bound; both are valid, so the smaller is too.
    """
    r = float(rho)
    d = float(delta)
    if r < 0:
        raise InvalidPrivacyValue("rho must be >= 0", field="rho")
    if r == 0:
        return Fraction(0)
    if not 0 < d < 1:
        raise InvalidPrivacyValue("converting zCDP to (epsilon, delta) needs 0 < delta < 1", field="delta")
    bun_steinke = r + 2.0 * math.sqrt(r * math.log(1.0 / d))
    # the CKS bound can dip below zero for a tiny rho and a large delta: (0, delta)-DP then holds
    return _round_up(max(0.0, min(bun_steinke, _eps_cks(r, d))))


def zcdp_rho(epsilon: Fraction | float, delta: Fraction | float) -> Fraction:
    """The largest rho (rounded down) whose conversion at delta is at most epsilon.

    This is how an (epsilon, delta) request is turned into the rho a zCDP
    mechanism runs at: the mechanism then satisfies the request exactly or better.
    """
    e = float(epsilon)
    d = float(delta)
    if e <= 0:
        raise InvalidPrivacyValue("epsilon must be > 0 for a zCDP mechanism", field="epsilon")
    if not 0 < d < 1:
        raise InvalidPrivacyValue("a zCDP mechanism needs 0 < delta < 1 (for example 1e-9)", field="delta")
    lo, hi = 0.0, e  # rho <= epsilon always
    for _ in range(200):
        mid = (lo + hi) / 2
        if float(zcdp_epsilon(mid, d)) <= e:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    rho = _round_down(lo)
    # the rounding can only lower rho; check the result really fits
    while rho > 0 and zcdp_epsilon(rho, d) > Fraction(e):
        rho -= Fraction(1, _SCALE)
    return rho


def gaussian_sigma(rho: Fraction | float, sensitivity: float = 1.0) -> float:
    """Noise scale of the Gaussian mechanism that is rho-zCDP at this L2 sensitivity."""
    r = float(rho)
    if r <= 0:
        raise InvalidPrivacyValue("rho must be > 0", field="rho")
    return sensitivity / math.sqrt(2.0 * r)


@dataclass(frozen=True)
class BudgetStatus:
    """What a dataset has committed and what remains, under each accountant."""

    budget: PrivacyBudget
    spent: PrivacyCost
    reserved: PrivacyCost
    remaining_epsilon: Fraction
    remaining_delta: Fraction
    all_zcdp: bool
    zcdp_rho_committed: Fraction | None
    zcdp_epsilon_committed: Fraction | None
    zcdp_remaining_epsilon: Fraction | None
    non_dp_releases: int
    entries: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def has_formal_guarantee(self) -> bool:
        return self.non_dp_releases == 0

    @property
    def effective_remaining_epsilon(self) -> Fraction:
        """The remaining epsilon under the tighter valid accountant."""
        if self.zcdp_remaining_epsilon is not None:
            return max(self.remaining_epsilon, self.zcdp_remaining_epsilon)
        return self.remaining_epsilon

    def guarantee(self) -> str:
        """The guarantee that holds for everything released so far, in words."""
        committed = self.spent + self.reserved
        parts: list[str] = []
        if not self.has_formal_guarantee:
            parts.append(
                f"NO FORMAL GUARANTEE: {self.non_dp_releases} non-differentially-private release(s) "
                "of this dataset were made (policy allow-non-dp). Their output may reveal individual "
                "records; the figures below apply only to the DP releases."
            )
        if committed.epsilon == 0 and committed.delta == 0:
            parts.append("No differentially private release has read this dataset yet.")
        else:
            text = (
                f"All DP releases together satisfy ({format_value(committed.epsilon)}, "
                f"{format_value(committed.delta)})-differential privacy by basic composition"
            )
            if self.all_zcdp and self.zcdp_epsilon_committed is not None:
                text += (
                    f", and ({format_value(self.zcdp_epsilon_committed)}, {format_value(self.budget.delta)})"
                    f"-DP by zCDP composition (total rho = {format_value(self.zcdp_rho_committed)})"
                )
            parts.append(text + ". Reserved charges of running jobs are included.")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {
            "budget": self.budget.to_dict(),
            "spent": self.spent.to_dict(),
            "reserved": self.reserved.to_dict(),
            "remaining": {
                "basic": {
                    "epsilon": str(self.remaining_epsilon),
                    "epsilon_float": float(self.remaining_epsilon),
                    "delta": str(self.remaining_delta),
                    "delta_float": float(self.remaining_delta),
                },
                "zcdp": None
                if self.zcdp_remaining_epsilon is None
                else {
                    "rho_committed": str(self.zcdp_rho_committed),
                    "rho_committed_float": float(self.zcdp_rho_committed or 0),
                    "epsilon_committed": str(self.zcdp_epsilon_committed),
                    "epsilon_committed_float": float(self.zcdp_epsilon_committed or 0),
                    "epsilon": str(self.zcdp_remaining_epsilon),
                    "epsilon_float": float(self.zcdp_remaining_epsilon),
                    "delta": str(self.budget.delta),
                },
                "effective_epsilon_float": float(self.effective_remaining_epsilon),
            },
            "all_zcdp": self.all_zcdp,
            "non_dp_releases": self.non_dp_releases,
            "formal_guarantee": self.has_formal_guarantee,
            "guarantee": self.guarantee(),
        }


def _sum(costs: Iterable[PrivacyCost]) -> PrivacyCost:
    total = PrivacyCost.zero()
    for c in costs:
        total = total + c
    return total


def budget_status(budget: PrivacyBudget, spent: Iterable[PrivacyCost], reserved: Iterable[PrivacyCost]) -> BudgetStatus:
    """Compose the committed charges of a dataset under both accountants."""
    spent = list(spent)
    reserved = list(reserved)
    dp_spent = [c for c in spent if c.is_dp]
    dp_reserved = [c for c in reserved if c.is_dp]
    non_dp = sum(1 for c in spent + reserved if not c.is_dp)
    s = _sum(dp_spent)
    r = _sum(dp_reserved)
    committed = s + r
    rem_eps = max(budget.epsilon - committed.finite_epsilon, Fraction(0))
    rem_delta = max(budget.delta - committed.delta, Fraction(0))
    dp_all = dp_spent + dp_reserved
    all_zcdp = all(c.is_zcdp for c in dp_all)
    z_rho = z_eps = z_rem = None
    if all_zcdp and budget.delta > 0:
        z_rho = sum((c.rho for c in dp_all if c.rho is not None), Fraction(0))  # all of them: all_zcdp
        z_eps = zcdp_epsilon(z_rho, budget.delta) if z_rho > 0 else Fraction(0)
        z_rem = max(budget.epsilon - z_eps, Fraction(0))
    return BudgetStatus(
        budget=budget,
        spent=s,
        reserved=r,
        remaining_epsilon=rem_eps,
        remaining_delta=rem_delta,
        all_zcdp=all_zcdp,
        zcdp_rho_committed=z_rho,
        zcdp_epsilon_committed=z_eps,
        zcdp_remaining_epsilon=z_rem,
        non_dp_releases=non_dp,
        entries=len(spent) + len(reserved),
    )


def check_can_pay(
    budget: PrivacyBudget,
    committed: Iterable[PrivacyCost],
    cost: PrivacyCost,
    policy: str = POLICY_DP_ONLY,
) -> str:
    """Decide whether `cost` may be charged on top of `committed`.

    Returns the accountant that admits it ("basic", "zcdp", "none" for a zero
    cost, "non-dp"), or raises BudgetExceeded / PolicyViolation with a message
    that gives the remaining budget.
    """
    committed = list(committed)
    if not cost.is_dp:
        if policy != POLICY_ALLOW_NON_DP:
            raise PolicyViolation(
                "this method is not differentially private and the dataset's policy is "
                f"'{policy}'; choose a DP method, or ask the steward to set the policy to "
                f"'{POLICY_ALLOW_NON_DP}'",
                field="method",
            )
        return "non-dp"
    if cost.is_zero:
        return "none"
    dp_committed = [c for c in committed if c.is_dp]
    total = _sum(dp_committed) + cost
    if total.epsilon <= budget.epsilon and total.delta <= budget.delta:
        return "basic"
    if cost.is_zcdp and all(c.is_zcdp for c in dp_committed) and budget.delta > 0:
        assert cost.rho is not None
        z_rho = sum((c.rho for c in dp_committed if c.rho is not None), Fraction(0)) + cost.rho
        if zcdp_epsilon(z_rho, budget.delta) <= budget.epsilon:
            return "zcdp"
    status = budget_status(budget, dp_committed, [])
    remaining = f"epsilon {format_value(status.remaining_epsilon)}, delta {format_value(status.remaining_delta)}"
    if status.zcdp_remaining_epsilon is not None:
        remaining += f" (zCDP accounting: epsilon {format_value(status.zcdp_remaining_epsilon)})"
    raise BudgetExceeded(
        f"the remaining privacy budget cannot pay for this release: it asks for "
        f"epsilon {format_value(cost.epsilon)}, delta {format_value(cost.delta)}; remaining is "
        f"{remaining}. Ask for a smaller epsilon, or ask the steward for more budget.",
        field="epsilon",
    )
