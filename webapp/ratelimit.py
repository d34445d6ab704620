"""Brute-force limits on logins and API tokens (Flask-Limiter's storage and strategy).

What is counted, each as a moving window configured in settings:

* failed logins per account name (SYNTHGATE_LOGIN_FAIL_LIMIT_ACCOUNT) and per
  client address (SYNTHGATE_LOGIN_FAIL_LIMIT_CLIENT). Once a limit is reached
  every login for that account (or from that client) gets 429, right password
  or not, until the window has room again: a lockout that ends by itself;
* failed API tokens per client (SYNTHGATE_TOKEN_FAIL_LIMIT_CLIENT);
* API requests per account (SYNTHGATE_API_LIMIT_ACCOUNT).

The counters live in Redis when the broker is Redis (shared by every web
process), otherwise in each process's memory (a single machine: the limit then
holds per gunicorn worker). A refusal says when to try again and carries
Retry-After.
"""

from __future__ import annotations

import hashlib
import logging
import time

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from redis.exceptions import RedisError

from core.errors import ServiceError
from core.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "TooManyAttempts",
    "check_login",
    "check_token_client",
    "count_api_request",
    "init_rate_limits",
    "note_login_failure",
    "note_token_failure",
]


class TooManyAttempts(ServiceError):
    """HTTP 429 with the seconds to wait (sent as Retry-After)."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


def init_rate_limits(app: Flask, settings: Settings) -> None:
    """A limiter for this app with the settings' storage, and the 429 response.

    One limiter per app (in app.extensions), so that apps built in one process keep their own counters.
    """
    for spec in (
        settings.login_fail_limit_account,
        settings.login_fail_limit_client,
        settings.token_fail_limit_client,
        settings.api_limit_account,
    ):
        parse(spec)  # a wrong setting fails at start-up, not at the first login
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.rate_limit_storage)
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    # one installation's counters apart from another's on a shared Redis (same on all its web machines)
    install = (settings.database_url + "\0" + app.config["SECRET_KEY"]).encode()
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "synthgate-" + hashlib.sha256(install).hexdigest()[:12])
    app.extensions["synthgate_limiter"] = Limiter(get_remote_address, app=app)

    from webapp.errors import error_response

    @app.errorhandler(TooManyAttempts)
    def _too_many(exc: TooManyAttempts):  # type: ignore[no-untyped-def]
        resp = error_response(exc.status, exc.code, exc.message, exc.field)
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp


def _settings() -> Settings:
    return current_app.config["SYNTHGATE"]


class _FallbackLimiter:
    """The configured limiter, or this process's memory while its storage (Redis) cannot be reached.

    Brute-force limits keep holding (per process) through a Redis outage instead of turning
    every login and API call into a 500; the outage is logged.
    """

    def __init__(self, primary: RateLimiter) -> None:
        self.primary = primary
        self.memory = MovingWindowRateLimiter(MemoryStorage())

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            try:
                return getattr(self.primary, name)(*args, **kwargs)
            except (RedisError, StorageError, OSError) as exc:
                log.warning("rate-limit storage unreachable (%s); counting in this process's memory", exc)
                return getattr(self.memory, name)(*args, **kwargs)

        return call


def _limiter() -> _FallbackLimiter:
    ext = current_app.extensions
    if "synthgate_limiter_fallback" not in ext:
        ext["synthgate_limiter_fallback"] = _FallbackLimiter(ext["synthgate_limiter"].limiter)
    return ext["synthgate_limiter_fallback"]


def _client() -> str:
    return request.remote_addr or "unknown"


def _retry_after(item: RateLimitItem, *keys: str) -> int:
    reset_at, _remaining = _limiter().get_window_stats(item, *keys)
    return max(1, int(reset_at - time.time()) + 1)


def _check(spec: str, what: str, message: str, *keys: str) -> None:
    item = parse(spec)
    if not _limiter().test(item, what, *keys):
        wait = _retry_after(item, what, *keys)
        raise TooManyAttempts(message.format(limit=spec) + f"; try again in {wait} s", retry_after=wait)


def _account_key(username: str) -> str:
    return (username or "").strip().lower()[:64] or "-"


def check_login(username: str) -> None:
    """Refuse a login attempt (429) while the account or the client has too many recent failures."""
    s = _settings()
    _check(
        s.login_fail_limit_account,
        "login-account",
        "too many failed logins for this account ({limit})",
        _account_key(username),
    )
    _check(s.login_fail_limit_client, "login-client", "too many failed logins from your address ({limit})", _client())


def note_login_failure(username: str) -> None:
    s = _settings()
    _limiter().hit(parse(s.login_fail_limit_account), "login-account", _account_key(username))
    _limiter().hit(parse(s.login_fail_limit_client), "login-client", _client())


def check_token_client() -> None:
    """Refuse token authentication (429) from a client with too many recent invalid tokens."""
    _check(
        _settings().token_fail_limit_client,
        "token-client",
        "too many invalid API tokens from your address ({limit})",
        _client(),
    )


def note_token_failure() -> None:
    _limiter().hit(parse(_settings().token_fail_limit_client), "token-client", _client())


def count_api_request(user_id: int) -> None:
    """Count one API request of an account; 429 past SYNTHGATE_API_LIMIT_ACCOUNT."""
    spec = _settings().api_limit_account
    item = parse(spec)
    if not _limiter().hit(item, "api-account", str(user_id)):
        wait = _retry_after(item, "api-account", str(user_id))
        raise TooManyAttempts(
            f"too many API requests for this account ({spec}); try again in {wait} s", retry_after=wait
        )
