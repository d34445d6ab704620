"""The UTF-8 check of a CSV upload: arrow's validation of the whole file refuses exactly what Python's UTF-8
decoder refuses, and a refused file names the line and byte the chunked decoder finds."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import pytest

from privacy.errors import SchemaError
from privacy.schema.tables import _check_utf8, _valid_utf8

GOOD = "a,b\ncaf\u00e9,1\n\u6f22\u5b57,2\n\U0001f600,3\n"
BAD = [
    "caf\u00e9".encode("latin-1"),  # a lone continuation byte
    b"\xed\xa0\x80",  # a surrogate
    b"\xc0\xaf",  # an overlong form
    b"\xf4\x90\x80\x80",  # past U+10FFFF
    b"\xe2\x82",  # cut short at the end of the file
    b"\xff",
]


def _where(data: bytes) -> tuple[int, int]:
    """(byte, line) of the first bad byte, by Python's decoder on the whole file."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=True)
    except UnicodeDecodeError as exc:
        return exc.start, data[: exc.start].count(b"\n") + 1
    raise AssertionError("valid UTF-8")


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("where", ["header", "cell", "later chunk", "end"])
def test_refused_as_the_decoder_refuses(tmp_path: Path, bad: bytes, where: str) -> None:
    good = GOOD.encode()
    if where == "header":
        data = b"x" + bad + good
    elif where == "cell":
        data = good + b"z" + bad + b",4\n"
    elif where == "later chunk":
        data = good * 40_000 + bad + b",4\n"
    else:
        data = good + bad
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    assert not _valid_utf8(path)
    byte, line = _where(data)
    with pytest.raises(SchemaError, match=re.escape(f"(byte {byte}, on line {line}, is not valid UTF-8)")):
        _check_utf8(path, chunk_size=1 << 16)


def test_valid_text_passes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeff".encode() + GOOD.encode() * 1000)
    assert _valid_utf8(path)
    _check_utf8(path)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert _valid_utf8(empty)


@pytest.mark.parametrize("block_size", [1, 2, 3, 4, 5, 7, 64])
def test_blocks_cut_anywhere_give_the_decoders_verdict(tmp_path: Path, block_size: int) -> None:
    # the file is validated a block at a time (not mapped: mapped pages count as resident memory), so a
    # block may end inside a character; valid text must pass and every bad sequence must still be refused
    import random

    rng = random.Random(block_size)
    path = tmp_path / "t.csv"
    pieces = [*(c.encode() for c in GOOD), *BAD]
    for _ in range(300):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        path.write_bytes(data)
        try:
            codecs.getincrementaldecoder("utf-8")().decode(data, final=True)
            want = True
        except UnicodeDecodeError:
            want = False
        assert _valid_utf8(path, block_size=block_size) is want, data
