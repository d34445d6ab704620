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
