"""Every privacy decision of the marginal engine, in one place.

The engine runs two zCDP primitives on the data:

* the Gaussian mechanism on a marginal (a histogram, L2 sensitivity 1 under
  add/remove of one row): noise of standard deviation sigma costs
  rho = 1 / (2 sigma^2);
* the exponential mechanism on a score of sensitivity `Delta`, sampled with
  probability proportional to exp(epsilon * score / (2 Delta)): it is
  epsilon-DP and therefore epsilon^2 / 8-zCDP (bounded range, Cesar and
  Rogers 2021), the conversion MST and AIM use.

A request (epsilon, delta) becomes the total rho = `zcdp_rho(epsilon, delta)`
(the largest rho whose conversion is at most epsilon; never above
smartnoise's `cdp_rho`). `ZCDPLedger` hands out each step's share as an exact
`Fraction`, turns it into the float parameter the mechanism runs with, rounded
in the safe direction (sigma up, epsilon down) and checked exactly, and refuses
any step the remaining rho cannot pay. The sum of the shares is the total
rho, so the fit reports exactly the requested (epsilon, delta) with that rho.

Budget splits (of the rho the method runs at: all of the request's, or what
is left after a synthesizer's `adaptive_bins_share` placed the bins on the
same kind of ledger, `privacy.bin_placement`):

* MST (McKenna, Miklau, Sheldon 2021; smartnoise `snsynth/mst/mst.py`):
  rho/3 for the one-way marginals (rho/(3d) each, i.e. sigma = sqrt(3d/(2 rho))),
  rho/3 for the d-1 exponential-mechanism rounds that pick the tree
  (epsilon = sqrt(8 (rho/3) / (d-1)) each), rho/3 for the d-1 two-way marginals
  of the tree. With one column the one-way marginal gets all of rho; with two
  columns there is nothing to select, and the one-way and two-way marginals
  get rho/2 each.
* AIM (McKenna et al. 2022; smartnoise `snsynth/aim/aim.py`): with T rounds
  (default 16 d), each round's measurement gets 0.9 rho/T and its selection
  0.1 rho/T; the one-way marginals are first measured at the round sigma.
  When a measurement barely changes the model the round budget is multiplied
  by 4 (sigma halves, epsilon doubles); when the estimation's work budget
  affords fewer rounds than the remaining rho would take, the round budget is
  raised to spread the remaining rho over the rounds it affords
  (`AIMSchedule.spread_over`, see privacy.engine.aim); when less than two
  rounds' budget is left, the last round spends exactly what remains (0.9 / 0.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from privacy.accounting import gaussian_sigma, zcdp_rho
from privacy.budget import PrivacyCost
from privacy.errors import InvalidPrivacyValue, MethodOptionError

__all__ = [
    "AIMSchedule",
    "MSTSplit",
    "Step",
    "ZCDPLedger",
    "exponential_rho",
    "gaussian_rho",
    "mst_split",
    "request_rho",
]


def request_rho(requested: PrivacyCost) -> Fraction:
    """The total rho a request (epsilon, delta) runs at."""
    if not requested.is_dp or requested.delta <= 0:
        raise InvalidPrivacyValue("the marginal engine needs a finite epsilon and a delta > 0", field="delta")
    return zcdp_rho(requested.finite_epsilon, requested.delta)


def gaussian_rho(sigma: float, sensitivity: float = 1.0) -> Fraction:
    """The exact rho of a Gaussian mechanism with this (float) sigma."""
    return Fraction(sensitivity) ** 2 / (2 * Fraction(sigma) ** 2)


def exponential_rho(epsilon: float) -> Fraction:
    """The exact rho of an epsilon-DP exponential mechanism (bounded range)."""
    return Fraction(epsilon) ** 2 / 8


def _sigma_for(rho: Fraction, sensitivity: float = 1.0) -> float:
    """The smallest float sigma whose exact rho is at most `rho`."""
    sigma = gaussian_sigma(rho, sensitivity)
    while gaussian_rho(sigma, sensitivity) > rho:
        sigma = math.nextafter(sigma, math.inf)
    return sigma


def _epsilon_for(rho: Fraction) -> float:
    """The largest float epsilon whose exact rho (epsilon^2 / 8) is at most `rho`."""
    eps = math.sqrt(8.0 * float(rho))
    while eps > 0 and exponential_rho(eps) > rho:
        eps = math.nextafter(eps, 0.0)
    return eps


@dataclass(frozen=True)
class Step:
    """One use of the data: a measurement or a selection, with its exact share of rho."""

    kind: str  # "measure" | "select"
    label: str
    rho: Fraction
    sigma: float | None = None  # Gaussian measurements
    epsilon: float | None = None  # exponential-mechanism selections

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "label": self.label,
            "rho": str(self.rho),
            "rho_float": float(self.rho),
            "sigma": self.sigma,
            "epsilon": self.epsilon,
        }


@dataclass
class ZCDPLedger:
    """The rho of every step of one fit, checked against the total before it runs."""

    total: Fraction
    steps: list[Step] = field(default_factory=list)

    @property
    def spent(self) -> Fraction:
        return sum((s.rho for s in self.steps), Fraction(0))

    @property
    def remaining(self) -> Fraction:
        return self.total - self.spent

    def _charge(self, step: Step) -> None:
        if step.rho <= 0:
            raise InvalidPrivacyValue(f"step {step.label} must have a positive rho", field="rho")
        if self.spent + step.rho > self.total:
            raise InvalidPrivacyValue(
                f"step {step.label} asks for rho {float(step.rho):.6g}; only {float(self.remaining):.6g} remains",
                field="rho",
            )
        self.steps.append(step)

    def gaussian(self, label: str, rho: Fraction) -> float:
        """Charge `rho` for one Gaussian measurement (L2 sensitivity 1); return its sigma."""
        sigma = _sigma_for(rho)
        self._charge(Step("measure", label, rho, sigma=sigma))
        return sigma

    def exponential(self, label: str, rho: Fraction) -> float:
        """Charge `rho` for one exponential-mechanism selection; return its epsilon."""
        eps = _epsilon_for(rho)
        self._charge(Step("select", label, rho, epsilon=eps))
        return eps

    def by_kind(self) -> dict[str, Fraction]:
        out: dict[str, Fraction] = {}
        for s in self.steps:
            out[s.kind] = out.get(s.kind, Fraction(0)) + s.rho
        return out

    def cost(self, requested: PrivacyCost) -> PrivacyCost:
        """The cost of the fit: the requested (epsilon, delta) with the rho spent.

        Every plan spends its whole total, so this is the request with
        rho = zcdp_rho(epsilon, delta); a plan that spent less would still be
        charged the full request, never more.
        """
        if self.spent > self.total:  # pragma: no cover - _charge refuses this
            raise AssertionError("ledger overspent")
        return PrivacyCost(requested.epsilon, requested.delta, self.spent)

    def to_dict(self) -> dict:
        return {
            "total_rho": str(self.total),
            "spent_rho": str(self.spent),
            "by_kind": {k: str(v) for k, v in self.by_kind().items()},
            "steps": [s.to_dict() for s in self.steps],
        }


# ----- MST ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MSTSplit:
    """MST's budget: the total for one-way marginals, tree selection and two-way marginals."""

    one_way: Fraction
    select: Fraction
    two_way: Fraction
    columns: int

    @property
    def total(self) -> Fraction:
        return self.one_way + self.select + self.two_way

    @property
    def one_way_each(self) -> Fraction:
        return self.one_way / self.columns

    @property
    def select_rounds(self) -> int:
        return self.columns - 1 if self.columns > 2 else 0

    @property
    def select_each(self) -> Fraction:
        return self.select / self.select_rounds if self.select_rounds else Fraction(0)

    @property
    def two_way_each(self) -> Fraction:
        return self.two_way / (self.columns - 1) if self.columns > 1 else Fraction(0)


def mst_split(rho: Fraction, columns: int) -> MSTSplit:
    """Split rho as MST does: thirds, or what the degenerate shapes can use."""
    if columns < 1:
        raise ValueError("MST needs at least one column")
    if columns == 1:
        return MSTSplit(rho, Fraction(0), Fraction(0), 1)
    if columns == 2:
        return MSTSplit(rho / 2, Fraction(0), rho / 2, 2)
    return MSTSplit(rho / 3, rho / 3, rho / 3, columns)


# ----- AIM ---------------------------------------------------------------------------------------


@dataclass
class AIMSchedule:
    """AIM's adaptive budget: per-round shares, annealing, and the final round.

    `ledger` is charged by `one_way` and `next_round`; `anneal` raises the
    per-round budget when a measurement barely changed the model.
    """

    ledger: ZCDPLedger
    rounds: int
    measure_fraction: Fraction = Fraction(9, 10)
    round_measure: Fraction = field(init=False)
    round_select: Fraction = field(init=False)
    finished: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError("AIM needs at least one round")
        self.round_measure = self.measure_fraction * self.ledger.total / self.rounds
        self.round_select = (1 - self.measure_fraction) * self.ledger.total / self.rounds

    def one_way(self, labels: list[str], *, spend_all: bool = False) -> list[float]:
        """Measure every one-way marginal at the round sigma; with `spend_all` (nothing
        left to select, e.g. one column), split all of rho over them instead."""
        if not labels:
            return []
        if spend_all:
            share = self.ledger.remaining / len(labels)
            self.finished = True
        else:
            if len(labels) * self.round_measure + self.round_measure + self.round_select > self.ledger.total:
                raise MethodOptionError(
                    f"AIM needs more rounds than columns ({len(labels)}): raise `rounds`", field="options"
                )
            share = self.round_measure
        return [self.ledger.gaussian(label, share) for label in labels]

    def next_round(self, label: str) -> tuple[float, float, bool]:
        """Charge one round: (selection epsilon, measurement sigma, is_last)."""
        if self.finished:
            raise InvalidPrivacyValue("AIM's budget is spent", field="rho")
        remaining = self.ledger.remaining
        measure, select = self.round_measure, self.round_select
        if remaining < 2 * (measure + select):
            measure = self.measure_fraction * remaining
            select = remaining - measure
            self.finished = True
        eps = self.ledger.exponential(f"{label}: select", select)
        sigma = self.ledger.gaussian(f"{label}: measure", measure)
        return eps, sigma, self.finished

    def anneal(self) -> None:
        """Halve sigma and double epsilon for the next rounds (4x the per-round rho)."""
        self.round_measure *= 4
        self.round_select *= 4

    def spread_over(self, rounds: int) -> None:
        """Raise the per-round budget so that what remains is spent in at most `rounds` more rounds
        (at least one); never lowers it. With one round, the next round is the last."""
        share = self.ledger.remaining / max(rounds, 1)
        if share > self.round_measure + self.round_select:
            self.round_measure = self.measure_fraction * share
            self.round_select = share - self.round_measure

    @property
    def current_sigma(self) -> float:
        return _sigma_for(self.round_measure)
