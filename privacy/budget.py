"""Privacy values: frozen, validated, exact.

`PrivacyCost` is what one mechanism run costs; `PrivacyBudget` is what a dataset
may spend in total. Both hold exact rationals (`fractions.Fraction`), so that a
budget of 1.0 split ten ways is spent exactly, and both refuse anything that is
not a plain finite non-negative number. Infinity appears only through
`PrivacyCost.non_dp()`, the explicit value for a release without a formal
guarantee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from numbers import Rational
from typing import Any

from privacy.errors import InvalidPrivacyValue

__all__ = ["INFINITE", "PrivacyBudget", "PrivacyCost", "format_value", "to_fraction"]


class _Infinite:
    """The epsilon of a non-DP release. Compares above every number."""

    _instance: _Infinite | None = None

    def __new__(cls) -> _Infinite:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "INFINITE"

    def __str__(self) -> str:
        return "inf"

    def __eq__(self, other: object) -> bool:
        return other is self or (isinstance(other, float) and math.isinf(other) and other > 0)

    def __hash__(self) -> int:
        return hash(math.inf)

    def __lt__(self, other: object) -> bool:
        return False

    def __le__(self, other: object) -> bool:
        return self == other

    def __gt__(self, other: object) -> bool:
        return not self == other

    def __ge__(self, other: object) -> bool:
        return True

    def __float__(self) -> float:
        return math.inf

    def __add__(self, other: object) -> _Infinite:
        return self

    __radd__ = __add__

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Infinite, ())


INFINITE = _Infinite()
_LARGEST = Decimal("1e300")  # beyond this a value cannot be a float, let alone a privacy parameter


def to_fraction(value: Any, name: str = "value") -> Fraction:
    """Turn a finite number into an exact Fraction, or raise InvalidPrivacyValue.

    Floats go through their shortest decimal repr, so 0.1 becomes exactly 1/10.
    Strings, booleans, None, NaN and infinities are refused: a privacy parameter
    must be a number the caller meant, not something that happens to parse.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str | bytes):
        raise InvalidPrivacyValue(f"{name} must be a number, got {value!r}", field=name)
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, Rational):
        return Fraction(int(value.numerator), int(value.denominator))
    if isinstance(value, Decimal):
        if not value.is_finite() or abs(value) > _LARGEST:
            raise InvalidPrivacyValue(f"{name} must be finite, got {value}", field=name)
        return Fraction(value)
    try:
        as_float = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidPrivacyValue(f"{name} must be a number, got {value!r}", field=name) from exc
    if math.isnan(as_float) or math.isinf(as_float):
        raise InvalidPrivacyValue(f"{name} must be a finite number, got {as_float}", field=name)
    try:
        return Fraction(Decimal(repr(as_float)))
    except InvalidOperation as exc:  # pragma: no cover - repr of a finite float always parses
        raise InvalidPrivacyValue(f"{name} is not a number: {value!r}", field=name) from exc


def parse_number(text: str, name: str) -> Fraction:
    """Parse user text (CLI flag, form field) into an exact Fraction.

    Separate from `to_fraction` on purpose: value objects refuse strings, and the
    edges of the system (CLI, HTML forms) decide explicitly to parse.
    """
    text = str(text).strip()
    try:
        dec = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidPrivacyValue(f"{name} must be a number such as 0.5, got {text!r}", field=name) from exc
    if not dec.is_finite() or abs(dec) > _LARGEST:
        raise InvalidPrivacyValue(f"{name} must be a finite number, got {text!r}", field=name)
    return Fraction(dec)


def format_value(value: Fraction | _Infinite | None, places: int = 6) -> str:
    """Human form of an exact value: '0.1', '1/3 (0.333333)', 'inf'."""
    if value is None:
        return "-"
    if value is INFINITE:
        return "inf"
    assert isinstance(value, Fraction)
    dec = Decimal(value.numerator) / Decimal(value.denominator)
    if Fraction(dec) == value:
        return format(dec.normalize(), "f")
    return f"{value.numerator}/{value.denominator} ({float(value):.{places}g})"


def _check_delta(delta: Fraction, name: str = "delta") -> None:
    if delta < 0:
        raise InvalidPrivacyValue(f"{name} must be >= 0, got {float(delta)}", field=name)
    if delta >= 1:
        raise InvalidPrivacyValue(f"{name} must be below 1 (typically 1e-6 or less), got {float(delta)}", field=name)


@dataclass(frozen=True, slots=True)
class PrivacyCost:
    """The privacy cost of one mechanism run.

    epsilon, delta: the (epsilon, delta)-DP guarantee of the run.
    rho: the zero-concentrated DP parameter when the mechanism is zCDP (MST, AIM,
    Gaussian mechanisms); None when it is not, in which case the run can only be
    composed with basic sequential composition.
    """

    epsilon: Fraction | _Infinite
    delta: Fraction = Fraction(0)
    rho: Fraction | None = None

    def __init__(self, epsilon: Any, delta: Any = 0, rho: Any = None) -> None:
        eps = to_fraction(epsilon, "epsilon")
        if eps < 0:
            raise InvalidPrivacyValue(f"epsilon must be >= 0, got {float(eps)}", field="epsilon")
        dlt = to_fraction(delta, "delta")
        _check_delta(dlt)
        r = None
        if rho is not None:
            r = to_fraction(rho, "rho")
            if r < 0:
                raise InvalidPrivacyValue(f"rho must be >= 0, got {float(r)}", field="rho")
        object.__setattr__(self, "epsilon", eps)
        object.__setattr__(self, "delta", dlt)
        object.__setattr__(self, "rho", r)

    @classmethod
    def non_dp(cls) -> PrivacyCost:
        """The cost of a release with no formal guarantee (epsilon = infinity)."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "epsilon", INFINITE)
        object.__setattr__(obj, "delta", Fraction(0))
        object.__setattr__(obj, "rho", None)
        return obj

    @classmethod
    def zero(cls) -> PrivacyCost:
        """The cost of a release that never reads real data."""
        return cls(0, 0, 0)

    @property
    def is_dp(self) -> bool:
        return self.epsilon is not INFINITE

    @property
    def is_zero(self) -> bool:
        return self.is_dp and self.epsilon == 0 and self.delta == 0 and (self.rho in (None, 0))

    @property
    def is_zcdp(self) -> bool:
        return self.rho is not None

    @property
    def finite_epsilon(self) -> Fraction:
        """The epsilon of a DP cost; a non-DP cost has none (ValueError)."""
        if isinstance(self.epsilon, Fraction):
            return self.epsilon
        raise ValueError("a non-DP cost has no finite epsilon")

    def __add__(self, other: PrivacyCost) -> PrivacyCost:
        """Basic sequential composition (and rho addition when both are zCDP)."""
        if not isinstance(other, PrivacyCost):
            return NotImplemented
        if not self.is_dp or not other.is_dp:
            return PrivacyCost.non_dp()
        rho = None if self.rho is None or other.rho is None else self.rho + other.rho
        return _unchecked(self.finite_epsilon + other.finite_epsilon, self.delta + other.delta, rho)

    def to_dict(self) -> dict[str, Any]:
        """JSON form with exact strings and float companions for display."""
        return {
            "epsilon": "inf" if not self.is_dp else _frac_str(self.epsilon),
            "delta": _frac_str(self.delta),
            "rho": None if self.rho is None else _frac_str(self.rho),
            "epsilon_float": float(self.epsilon),
            "delta_float": float(self.delta),
            "rho_float": None if self.rho is None else float(self.rho),
            "dp": self.is_dp,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrivacyCost:
        if data.get("epsilon") in ("inf", "Infinity") or data.get("dp") is False:
            return cls.non_dp()
        rho = data.get("rho")
        return cls(
            Fraction(data["epsilon"]),
            Fraction(data.get("delta") or 0),
            None if rho is None else Fraction(rho),
        )

    def describe(self) -> str:
        if not self.is_dp:
            return "not differentially private (epsilon = infinity)"
        text = f"epsilon = {format_value(self.epsilon)}, delta = {format_value(self.delta)}"
        if self.rho is not None:
            text += f" (zCDP rho = {format_value(self.rho)})"
        return text


def _unchecked(epsilon: Fraction, delta: Fraction, rho: Fraction | None) -> PrivacyCost:
    """Build a cost from values already known valid, except a delta sum may reach 1."""
    obj = object.__new__(PrivacyCost)
    object.__setattr__(obj, "epsilon", epsilon)
    object.__setattr__(obj, "delta", delta)
    object.__setattr__(obj, "rho", rho)
    return obj


def _frac_str(value: Fraction | _Infinite) -> str:
    if value is INFINITE:
        return "inf"
    assert isinstance(value, Fraction)
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


@dataclass(frozen=True, slots=True)
class PrivacyBudget:
    """A dataset's total privacy budget (epsilon, delta), finite by construction."""

    epsilon: Fraction
    delta: Fraction = Fraction(0)

    def __init__(self, epsilon: Any, delta: Any = 0) -> None:
        eps = to_fraction(epsilon, "epsilon_budget")
        if eps < 0:
            raise InvalidPrivacyValue(f"epsilon_budget must be >= 0, got {float(eps)}", field="epsilon_budget")
        dlt = to_fraction(delta, "delta_budget")
        _check_delta(dlt, "delta_budget")
        object.__setattr__(self, "epsilon", eps)
        object.__setattr__(self, "delta", dlt)

    def split(self, n: int) -> list[PrivacyCost]:
        """n equal costs whose basic composition is exactly this budget."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InvalidPrivacyValue(f"cannot split a budget into {n!r} parts", field="n")
        return [PrivacyCost(self.epsilon / n, self.delta / n) for _ in range(n)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "epsilon": _frac_str(self.epsilon),
            "delta": _frac_str(self.delta),
            "epsilon_float": float(self.epsilon),
            "delta_float": float(self.delta),
        }
