"""One mapping from every error to JSON (API) or an HTML page (browser routes).

Body: {"error": {"code": ..., "message": ..., "field": ...}}.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from core.errors import ServiceError
from privacy.errors import PrivacyError

log = logging.getLogger(__name__)


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, code: str, message: str, field: str | None = None):  # type: ignore[no-untyped-def]
    if wants_json():
        body: dict = {"error": {"code": code, "message": message}}
        if field:
            body["error"]["field"] = field
        return jsonify(body), status
    return render_template("error.html", status=status, code=code, message=message), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def _service(exc: ServiceError):  # type: ignore[no-untyped-def]
        return error_response(exc.status, exc.code, exc.message, exc.field)

    @app.errorhandler(PrivacyError)
    def _privacy(exc: PrivacyError):  # type: ignore[no-untyped-def]
        return error_response(exc.status, exc.code, exc.message, exc.field)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):  # type: ignore[no-untyped-def]
        return error_response(400, "csrf_failed", f"the form's security token is missing or expired "
                              f"({exc.description}); reload the page and submit again")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):  # type: ignore[no-untyped-def]
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        return error_response(413, "payload_too_large",
                              f"the upload is larger than the limit of {limit // (1024 * 1024)} MB; "
                              "upload a smaller file or ask an admin to raise SYNTHGATE_MAX_UPLOAD_MB")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _internal(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "an internal error occurred; it was logged")
