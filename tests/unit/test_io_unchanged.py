"""The vectorised I/O path gives what the per-row one gave: on every real table in tests/data (and a
dirtied copy of each with undeclared, formula-like, out-of-bounds, unparseable and null values), the
table read, the conformed table and its report, the codes, the CSV written, and the decoded,
schema-enforced sample and its CSV match fingerprints taken from the previous implementation."""

from __future__ import annotations

import json

import pytest

from tests.unit.io_fingerprints import EXPECTED, NAMES, fingerprints

EXPECTED_FINGERPRINTS = json.loads(EXPECTED.read_text())


@pytest.mark.parametrize("name", NAMES)
def test_io_path_matches_previous_implementation(name: str) -> None:
    assert fingerprints(name) == EXPECTED_FINGERPRINTS[name]
