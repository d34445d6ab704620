"""The pure rules behind login redirects and the password policy (the service is tested in integration)."""

from __future__ import annotations

import pytest

from core.auth import check_password_policy
from core.errors import InvalidRequest
from webapp.pages import safe_next


@pytest.mark.parametrize(
    "raw",
    [
        "/\t/evil.example",
        "/ /evil.example",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/\x0b/evil.example",
        "\x00//evil.example",
        "evil.example",
        "/\u2028/evil.example",
    ],
)
def test_next_never_leaves_the_host(raw):
    assert safe_next(raw) is None


def test_next_keeps_a_local_path_and_refuses_line_breaks():
    assert safe_next("/releases/3?tab=report#gate") == "/releases/3?tab=report#gate"
    assert safe_next("") is None and safe_next(None) is None
    for raw in ("/\r\nSet-Cookie: a=b", "/\nx"):
        with pytest.raises(InvalidRequest, match="line breaks"):
            safe_next(raw)


@pytest.mark.parametrize("weak", ["password", "PASSWORD", "letmein1", "sunshine", "1234567890", "zaq12wsx"])
def test_common_passwords_are_refused(weak):
    with pytest.raises(InvalidRequest, match="most common") as info:
        check_password_policy(weak, "someone")
    assert info.value.field == "password"


def test_length_username_and_strength():
    with pytest.raises(InvalidRequest, match="at least 12"):
        check_password_policy("a fine one", min_length=12)
    with pytest.raises(InvalidRequest, match="username"):
        check_password_policy("margaret-2026!", "margaret")
    with pytest.raises(InvalidRequest, match="too weak"):
        check_password_policy("abcabcabcabc")
    with pytest.raises(InvalidRequest, match="at most 256"):
        check_password_policy("x" * 257)
    check_password_policy("correct horse battery", "steward-1a2b3c")  # the fixtures' password passes
