"""Shared CLI plumbing: clean error messages and exit codes, no tracebacks for user mistakes."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click


class ApiError(Exception):
    """An error answer from the synthgate API."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn known errors into one line on stderr and exit code 2 (1 for server-side failures)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from core.errors import ServiceError
        from privacy.errors import PrivacyError

        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            where = f" ({exc.field})" if exc.field else ""
            fail(f"{exc.message}{where} [HTTP {exc.status} {exc.code}]", 1 if exc.status >= 500 else 2)
        except (PrivacyError, ServiceError) as exc:
            where = f" ({exc.field})" if getattr(exc, "field", None) else ""
            fail(f"{exc.message}{where} [{exc.code}]", 1 if exc.status >= 500 else 2)
        except FileNotFoundError as exc:
            fail(f"file not found: {exc.filename}")

    return wrapper


def child_env(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = dict(os.environ)
    env.update(settings.env())
    return env
