"""The job's secret seed stays out of what the report and the split produce; auxiliary draws
use sub-seeds that reveal nothing about it."""

from __future__ import annotations

import json

import pandas as pd

from evaluation import build_report, split_holdout
from privacy._random import sub_seed
from privacy.schema import conform_table, load_schema
from tests.conftest import DATA

SEED = 3_141_592_653_589_793_238 % 2**62


def _encodings(seed: int) -> set[str]:
    return {str(v) for v in {seed, *(seed % 2**k for k in range(16, 65))}} | {f"{seed:x}", f"{seed % 2**32:x}"}


def test_the_report_does_not_carry_its_seed() -> None:
    schema = load_schema(DATA / "penguins" / "schema.yaml")
    df = conform_table(pd.read_csv(DATA / "penguins" / "penguins.csv"), schema)[0]
    seed = SEED % 2**32
    report = build_report(df.iloc[:0], df.iloc[:0], df.head(60), schema, include=set(), seed=seed)
    texts = [
        json.dumps(report.to_dict(include_internal=True)),
        json.dumps(report.to_dict(include_internal=False)),
        report.to_html(include_internal=True),
        report.to_html(include_internal=False),
    ]
    assert "seed" not in report.settings
    for text in texts:
        assert str(seed) not in text


def test_sub_seeds_are_stable_distinct_and_unrelated_to_the_seed() -> None:
    a, b = sub_seed(SEED, "holdout split"), sub_seed(SEED, "report")
    assert a == sub_seed(SEED, "holdout split") and a != b
    assert 0 <= a < 2**62 and sub_seed(SEED + 1, "report") != b
    for value in (a, b):
        assert not _encodings(value) & _encodings(SEED)


def test_split_info_has_no_seed() -> None:
    schema = load_schema(DATA / "penguins" / "schema.yaml")
    df = conform_table(pd.read_csv(DATA / "penguins" / "penguins.csv"), schema)[0]
    info = split_holdout(df, schema, seed=sub_seed(SEED, "holdout split"))[2]
    assert not any(enc in json.dumps(info) for enc in _encodings(SEED) if len(enc) >= 6)


def test_noise_depends_on_every_bit_of_the_seed() -> None:
    """Two seeds equal modulo 2^32 draw different noise: the seed is not cut to 32 searchable bits."""
    from fractions import Fraction

    from privacy import PrivacyCost
    from privacy._random import full_seed_random_state
    from privacy.statistics import dp_statistics

    low, high = SEED % 2**32, SEED % 2**32 + 2**40
    assert (
        full_seed_random_state(low).randint(0, 2**31, 8).tolist()
        != full_seed_random_state(high).randint(0, 2**31, 8).tolist()
    )
    schema = load_schema(DATA / "penguins" / "schema.yaml")
    df = conform_table(pd.read_csv(DATA / "penguins" / "penguins.csv"), schema)[0]
    cost = PrivacyCost(1, Fraction(0))

    def tables(seed: int) -> str:
        release = dp_statistics(df, schema, cost, seed=seed)
        return json.dumps({k: v.to_dict(orient="records") for k, v in release.tables().items()}, default=str)

    assert tables(low) == tables(low)
    assert tables(low) != tables(high)


def test_smartnoise_global_seeding_uses_every_bit_of_the_seed() -> None:
    """smartnoise's networks draw from numpy's global generator: seeds equal modulo 2^32 differ there too."""
    import numpy as np

    from privacy.synthesizers.smartnoise import _seeded

    def draws(seed: int) -> list[int]:
        with _seeded(seed):
            return np.random.randint(0, 2**31, 8).tolist()

    low = SEED % 2**32
    assert draws(low) == draws(low)
    assert draws(low) != draws(low + 2**40)


def test_no_synthesizer_derives_a_draw_from_the_seed_by_arithmetic() -> None:
    """`seed + 7919` for sampling would hand the noise seed to whoever recovers the sampler's state
    from the released rows; every auxiliary draw goes through the HMAC sub-seed instead."""
    import re
    from pathlib import Path

    from privacy.synthesizers.base import Synthesizer

    root = Path(__file__).resolve().parents[2] / "privacy"
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for path in root.rglob("*.py")
        if path.name != "_random.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"seed\s*[-+*^%]\s*\d", line) and not line.lstrip().startswith("#")
    ]
    assert not offenders, offenders

    class Probe(Synthesizer):  # the smallest concrete synthesizer
        name = "probe"
        description = "probe"
        guarantee = "non-dp"

        def _fit(self, *args, **kwargs):
            raise NotImplementedError

        def _sample(self, *args, **kwargs):
            raise NotImplementedError

    assert Probe(seed=SEED).derived_seed("sample") == sub_seed(SEED, "sample") != SEED
    assert Probe().derived_seed("sample") is None
