"""Every option that sets how much work a fit does has a declared upper bound, checked up front."""

from __future__ import annotations

import pytest

from privacy.errors import MethodOptionError
from privacy.synthesizers import REGISTRY, create_synthesizer, synthesizer_class
from privacy.synthesizers.base import option_bounds


@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_every_whole_number_option_is_bounded(method: str) -> None:
    cls = synthesizer_class(method)
    for key, entry in cls.option_spec.items():
        if entry[0] is not int:
            continue
        lo, hi = option_bounds(entry)
        assert lo is not None and hi is not None, f"{method}: option {key} declares no bounds"
        default = entry[1]
        assert default is None or lo <= default <= hi, f"{method}: default of {key} is outside its bounds"
        info = cls.info()["options"][key]
        assert (info["min"], info["max"]) == (lo, hi)
        # one past the bound is refused when the request is read, naming the bound
        with pytest.raises(MethodOptionError, match=f"option {key} of {method} must be between"):
            create_synthesizer(method, options={key: hi + 1})
        with pytest.raises(MethodOptionError, match="must be between"):
            create_synthesizer(method, options={key: lo - 1})


def test_a_huge_iteration_count_is_refused() -> None:
    with pytest.raises(MethodOptionError, match=r"iters of mst must be between 0 and 20,000, got 1000000000000"):
        create_synthesizer("mst", options={"iters": 10**12})
    assert create_synthesizer("mst", options={"iters": 20_000}).options["iters"] == 20_000


FLOAT_OPTIONS = sorted(
    (method, key)
    for method in REGISTRY
    for key, entry in synthesizer_class(method).option_spec.items()
    if entry[0] is float
)


def test_float_options_exist() -> None:
    # the parametrised test below must not pass by having nothing to check
    assert {("aim", "max_work"), ("dpctgan", "sigma"), ("dpctgan", "minutes")} <= set(FLOAT_OPTIONS)


@pytest.mark.parametrize(("method", "key"), FLOAT_OPTIONS)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "nan", "NaN", "inf", "-Infinity"])
def test_every_number_option_refuses_what_is_not_a_finite_number(method: str, key: str, value: object) -> None:
    # NaN passes every comparison with a bound, so it must be refused before the bounds are checked
    with pytest.raises(MethodOptionError, match=f"option {key} of {method} must be a finite number") as info:
        create_synthesizer(method, options={key: value})
    assert info.value.field == "options"


@pytest.mark.parametrize(("method", "key"), FLOAT_OPTIONS)
def test_a_finite_number_option_is_still_accepted(method: str, key: str) -> None:
    entry = synthesizer_class(method).option_spec[key]
    lo, _ = option_bounds(entry)
    value = entry[1] if entry[1] is not None else (lo if lo is not None else 1.0)
    try:
        got = create_synthesizer(method, options={key: str(value)}).options[key]
    except MethodOptionError as exc:  # the method's own cross-option checks may refuse a lone value
        assert "finite number" not in str(exc)
    else:
        assert got == float(value)
