"""One mapping from every error to JSON (API) or an HTML page (browser routes).

Body: {"error": {"code": ..., "message": ..., "field": ...}}. A 503 (database
or job queue unreachable) carries Retry-After, so clients and load balancers
know to come back rather than give up.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from privacy.errors import CodedError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, code: str, message: str, field: str | None = None):  # type: ignore[no-untyped-def]
    if wants_json():
        body: dict = {"error": {"code": code, "message": message}}
        if field:
            body["error"]["field"] = field
        resp = jsonify(body)
    elif status == 503:
        resp = make_response(_bare_page(status, code, message))
    else:
        resp = make_response(render_template("error.html", status=status, code=code, message=message))
    resp.status_code = status
    if status == 503:
        resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return resp


def _bare_page(status: int, code: str, message: str) -> str:
    """An error page that needs nothing: the site layout looks up the signed-in user in the database,
    which is what is unreachable when this is shown."""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{status} {escape(code)}'
        f"</title></head><body><h1>Service unavailable</h1><p>{escape(message)}</p></body></html>"
    )


def _database_unreachable(exc: DBAPIError) -> bool:
    """A failure to reach or use the database server, as opposed to a bug in a statement."""
    return isinstance(exc, OperationalError | InterfaceError) or bool(exc.connection_invalidated)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CodedError)
    def _coded(exc: CodedError):  # type: ignore[no-untyped-def]
        # the service's errors and the privacy library's alike (core.errors.ServiceError, privacy.errors.PrivacyError)
        return error_response(exc.status, exc.code, exc.message, exc.field)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):  # type: ignore[no-untyped-def]
        return error_response(
            400,
            "csrf_failed",
            f"the form's security token is missing or expired ({exc.description}); reload the page and submit again",
        )

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):  # type: ignore[no-untyped-def]
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        return error_response(
            413,
            "payload_too_large",
            f"the upload is larger than the limit of {limit // (1024 * 1024)} MB; "
            "upload a smaller file or ask an admin to raise SYNTHGATE_MAX_UPLOAD_MB",
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(DBAPIError)
    def _database(exc: DBAPIError):  # type: ignore[no-untyped-def]
        if not _database_unreachable(exc):
            return _internal(exc)
        log.error(
            "database unavailable on %s %s: %s",
            request.method,
            request.path,
            str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__,
        )
        return error_response(
            503,
            "database_unavailable",
            "the database is unavailable right now, so the request was not carried out; "
            f"try again in {RETRY_AFTER_SECONDS} seconds",
        )

    @app.errorhandler(RecursionError)
    def _too_deep(exc: RecursionError):  # type: ignore[no-untyped-def]
        # deep input (a nested YAML schema or policy) exhausts a parser's stack: the input is at fault
        log.warning("input nested too deeply on %s %s", request.method, request.path, exc_info=exc)
        return error_response(
            400,
            "too_deeply_nested",
            "the input is nested too deeply to read; send a flatter document "
            "(a schema or policy is a mapping a few levels deep)",
        )

    @app.errorhandler(Exception)
    def _internal(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "an internal error occurred; it was logged")
