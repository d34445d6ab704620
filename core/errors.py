"""Service errors: each has a stable code and an HTTP status (privacy/errors.py: the one base).

User mistakes say what to change. `InternalError` is for bugs and broken
infrastructure; its message never carries data.
"""

from __future__ import annotations

from privacy.errors import CodedError


class ServiceError(CodedError):
    """Base of the service's own errors (the privacy library's derive from the same `CodedError`)."""

    code = "error"
    status = 400


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
