"""Shared fixtures: the real public datasets under tests/data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).parent / "data"
ADULT = DATA / "adult" / "adult.csv"
PUMS = DATA / "pums" / "PUMS.csv"
PENGUINS = DATA / "penguins" / "penguins.csv"
PENGUINS_RAW = DATA / "penguins" / "penguins-raw.csv"


@pytest.fixture(scope="session")
def adult_df() -> pd.DataFrame:
    from privacy.schema import read_table

    return read_table(ADULT)


@pytest.fixture(scope="session")
def pums_df() -> pd.DataFrame:
    from privacy.schema import read_table

    return read_table(PUMS)


@pytest.fixture(scope="session")
def penguins_df() -> pd.DataFrame:
    from privacy.schema import read_table

    return read_table(PENGUINS)
