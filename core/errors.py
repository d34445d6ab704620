"""Service errors: each has a stable code and an HTTP status.

User mistakes say what to change. `InternalError` is for bugs and broken
infrastructure; its message never carries data.
"""

from __future__ import annotations


class ServiceError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class InvalidRequest(ServiceError):
    code = "invalid_request"
    status = 400


class Unauthorized(ServiceError):
    code = "unauthorized"
    status = 401


class Forbidden(ServiceError):
    code = "forbidden"
    status = 403


class NotFound(ServiceError):
    code = "not_found"
    status = 404


class Conflict(ServiceError):
    code = "conflict"
    status = 409


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    status = 413


class ServiceUnavailable(ServiceError):
    """A dependency (database, job queue) is unreachable for now; the client should retry."""

    code = "service_unavailable"
    status = 503


class InternalError(ServiceError):
    code = "internal_error"
    status = 500
