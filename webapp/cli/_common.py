"""Shared CLI plumbing: exit codes, clean error messages (a line, or JSON under --json), no tracebacks.

Exit codes, one table for every command (documented in `synthgate --help` and the README):

    0  success
    1  the command ran and its answer is "no": a bundle or the audit log failed verification,
       a followed release ended failed
    2  usage: a missing or malformed argument or option, a value the CLI refuses before asking
       anything (a number that is not one, an unknown method or option), a file that does not exist
    3  refused: the service or the privacy library said no (HTTP 400, 401, 403, 413, 422; a budget,
       policy or disclosure refusal whatever its status; a schema or table that does not fit)
    4  not found (HTTP 404)
    5  conflict with the current state (HTTP 409: already approved or decided, a name taken)
    6  the service failed or cannot be reached (HTTP 5xx, 429 "retry later", connection refused;
       an optional library missing on this machine)

Under --json an error is one JSON object on stderr:
    {"error": {"code": "<stable code>", "message": "...", "field": "<if any>", "status": <HTTP status if any>}}
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any, NoReturn

import click

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 5
EXIT_UNAVAILABLE = 6

# refusals on privacy grounds exit 3 whatever HTTP status carries them (a budget refusal is a 409)
REFUSAL_CODES = frozenset({"budget_exceeded", "policy_violation", "disclosure_infeasible", "domain_too_large"})

EXIT_CODES_HELP = """\b
Exit codes (every command):
  0  success
  1  verification failed (bundle verify, audit verify) or a followed release failed
  2  usage error: a bad argument or option value, a missing file
  3  refused: HTTP 400/401/403/413/422; a budget, policy or disclosure refusal;
     a schema or table that does not fit
  4  not found (HTTP 404)
  5  conflict with the current state (HTTP 409: already approved or decided, a name taken)
  6  server error or service unreachable (HTTP 5xx or 429, connection refused)

\b
With --json, success is one JSON document on stdout and an error is one object on stderr:
  {"error": {"code": "...", "message": "...", "field": "...", "status": 404}}
(field and status only when known; status is the HTTP status of an answer from the service)"""


def exit_code_for(status: int | None, code: str | None = None) -> int:
    """The exit code of an error answered by the service (its HTTP status and error code)."""
    if code in REFUSAL_CODES:
        return EXIT_REFUSED
    if status is None:
        return EXIT_UNAVAILABLE
    if status == 404:
        return EXIT_NOT_FOUND
    if status == 409:
        return EXIT_CONFLICT
    if status == 429 or status >= 500:
        return EXIT_UNAVAILABLE
    if 400 <= status < 500:
        return EXIT_REFUSED
    return EXIT_UNAVAILABLE  # an answer that is neither success nor a client error


def exit_code_for_local(status: int, code: str | None = None) -> int:
    """The exit code of an error raised in this process (privacy library, core): a 400 here is a bad
    value given on the command line, so usage; everything else as if the service had answered it."""
    if status == 400 and code not in REFUSAL_CODES:
        return EXIT_USAGE
    return exit_code_for(status, code)


class ApiError(Exception):
    """An error answer from the synthgate API."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class CliError(click.ClickException):
    """An error the CLI reports and exits on: one line on stderr, or a JSON object under --json."""

    def __init__(
        self,
        message: str,
        exit_code: int = EXIT_USAGE,
        code: str = "usage_error",
        field: str | None = None,
        status: int | None = None,
        suffix: str = "",
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.code = code
        self.field = field
        self.status = status
        self.suffix = suffix
        self.as_json = False

    def show(self, file: IO[Any] | None = None) -> None:
        if self.as_json:
            echo_json_error(self.code, self.message, self.field, self.status)
            return
        where = f" ({self.field})" if self.field else ""
        click.echo(f"error: {self.message}{where}{self.suffix}", err=True)


def echo_json_error(code: str, message: str, field: str | None = None, status: int | None = None) -> None:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    if status is not None:
        error["status"] = status
    click.echo(json.dumps({"error": error}), err=True)


def fail(message: str, code: int = EXIT_USAGE, error_code: str | None = None) -> NoReturn:
    """Stop with `message`; `code` is the exit code (usage unless said otherwise)."""
    default = {EXIT_USAGE: "usage_error", EXIT_UNAVAILABLE: "unavailable", EXIT_FAILED: "failed"}
    raise CliError(message, code, error_code or default.get(code, "error"))


def error_from_api(exc: ApiError) -> CliError:
    return CliError(
        exc.message,
        exit_code_for(exc.status, exc.code),
        exc.code,
        exc.field,
        exc.status,
        suffix=f" [HTTP {exc.status} {exc.code}]",
    )


def _database_errors() -> tuple[type[BaseException], ...]:
    """Errors of a database that is down or unreachable (the server commands use one directly)."""
    try:
        from sqlalchemy.exc import InterfaceError, OperationalError
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        return ()
    return (OperationalError, InterfaceError)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn known errors into a CliError (its exit code from the table above); JSON if --json was given."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from privacy.errors import CodedError

        try:
            try:
                return fn(*args, **kwargs)
            except ApiError as exc:
                raise error_from_api(exc) from None
            except CodedError as exc:
                raise CliError(
                    exc.message,
                    exit_code_for_local(exc.status, exc.code),
                    exc.code,
                    exc.field,
                    suffix=f" [{exc.code}]",
                ) from None
            except FileNotFoundError as exc:
                raise CliError(f"file not found: {exc.filename}", EXIT_USAGE, "file_not_found") from None
            except _database_errors() as exc:
                raise CliError(
                    f"the database cannot be reached or used ({type(getattr(exc, 'orig', exc)).__name__}): check "
                    "SYNTHGATE_DATABASE_URL and that the database server is up",
                    EXIT_UNAVAILABLE,
                    "database_unavailable",
                ) from None
            except OSError as exc:
                if exc.filename is None:  # a connection broken mid-answer (requests' errors are OSErrors)
                    raise CliError(f"the connection failed: {exc}", EXIT_UNAVAILABLE, "unavailable") from None
                raise CliError(f"{exc.filename}: {exc.strerror}", EXIT_USAGE, "file_error") from None
        except CliError as exc:
            if kwargs.get("as_json") is True:
                exc.as_json = True
            raise

    return wrapper


def json_wanted(root: click.Group, args: list[str]) -> bool:
    """Whether the command line asks for JSON output: `--json` given to a command whose --json is a flag."""
    if "--json" not in args:
        return False
    command: click.Command = root
    for token in args:
        if token == "--":
            break
        if isinstance(command, click.Group) and token in command.commands:
            command = command.commands[token]
    return any(isinstance(p, click.Option) and p.is_flag and "--json" in p.opts for p in getattr(command, "params", []))


class SynthgateGroup(click.Group):
    """The root group: usage errors too come out as JSON under --json, with exit code 2."""

    def main(self, args: Any = None, *pargs: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        self._json_wanted = json_wanted(self, argv)
        return super().main(argv, *pargs, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            self._as_json(exc)
            raise

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.ClickException as exc:
            self._as_json(exc)
            raise

    def _as_json(self, exc: click.ClickException) -> None:
        if not getattr(self, "_json_wanted", False):
            return
        if isinstance(exc, CliError):
            exc.as_json = True
        else:
            code = "usage_error" if isinstance(exc, click.UsageError) else "error"
            exc.show = lambda file=None: echo_json_error(code, exc.format_message())  # type: ignore[method-assign]


_QUICK_EXIT = False
_STARTED_BY_MAIN = False  # whether `main` (the synthgate command) runs this process's command


def started_by_main() -> None:
    """Record that this process is a `synthgate` command, not a process that hosts the CLI (a test
    runner, the web app): process-wide settings such as `keep_freed_memory` are then its own."""
    global _STARTED_BY_MAIN
    _STARTED_BY_MAIN = True


# glibc's mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


def no_huge_pages() -> None:
    """`core.memory.no_huge_pages_for_numpy` in a process `main` started (a batch command of large arrays)."""
    if _STARTED_BY_MAIN:
        from core.memory import no_huge_pages_for_numpy

        no_huge_pages_for_numpy()


def keep_freed_memory() -> None:
    """Let the C allocator keep the memory a batch command frees for its next arrays, instead of giving
    it back to the kernel and having every page faulted in again (a large array is mapped afresh and
    unmapped when freed, and the heap's top is trimmed): large blocks come from the heap, which is no
    longer trimmed. The command's peak memory is the same; pages are faulted once. Only in a process
    `main` started (never a host process such as the web app or a test runner), and only where the C
    library has glibc's `mallopt`.

    Also `no_huge_pages`."""
    if not _STARTED_BY_MAIN or not sys.platform.startswith("linux"):
        return
    no_huge_pages()
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - a C library without mallopt
        return
    mallopt(_M_MMAP_THRESHOLD, 1 << 30)
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    mallopt(_M_TOP_PAD, 64 << 20)


def quick_exit_when_done() -> None:
    """Let `end_quickly` end the process once the command has succeeded, without the interpreter's
    teardown: atexit handlers run and the standard streams are flushed, but the modules and objects are
    not taken apart one by one (a tenth of a second or more once pandas, pyarrow and scipy are loaded).
    For commands that leave no open file, thread or pending work behind them."""
    global _QUICK_EXIT
    _QUICK_EXIT = True


def end_quickly(code: object) -> None:
    """End the process now with exit code 0 if the command asked for it and `code` is a success; else
    return, for the usual exit (also under a profiler, which writes its results after `main` returns)."""
    if not _QUICK_EXIT or code not in (0, None) or sys.getprofile() is not None:
        return
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken stream: the usual exit reports it
        return
    os._exit(0)


def child_env(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = dict(os.environ)
    env.update(settings.env())
    return env


def estimate_line(est: dict[str, Any] | None) -> str:
    """One line: total, fit and report, the rows and columns it is made for, and the policy's limit."""
    if not est:
        return "estimate: none (the method or its options cannot be estimated)"
    limit = est.get("limit_minutes")
    over = " OVER the policy's limit" if est.get("over_limit") else ""
    return (
        f"estimate: {est['text']} (fit {est['fit_seconds']} s, report {est['report_seconds']} s; range "
        f"{est['low_seconds']}-{est['high_seconds']} s) for {est['rows']:,} rows x {est['columns']} columns"
        + (f"; limit {limit:g} min{over}" if limit is not None else "; no limit")
    )
