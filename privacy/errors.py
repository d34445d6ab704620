"""Errors raised on purpose: by the privacy library, and (core/errors.py) by the service built on it.

One base, `CodedError`: a stable `code` (for API bodies and tests), a message
that says what to change, and the field it concerns. Each class also names the
HTTP status a web layer should answer it with (webapp/errors.py turns errors
into responses). All are user mistakes; bugs surface as ordinary exceptions.
"""

from __future__ import annotations


class CodedError(Exception):
    """Base of every error raised on purpose, here and in the service; `code` may be refined per raise."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class PrivacyError(CodedError):
    """Base of every error the privacy library raises on purpose."""

    code = "privacy_error"
    status = 400


class InvalidPrivacyValue(PrivacyError, ValueError):
    """An epsilon, delta, rho or budget that is not a finite, valid number."""

    code = "invalid_privacy_value"
    status = 400


class SchemaError(PrivacyError, ValueError):
    """The public schema is malformed, or the table does not fit it."""

    code = "schema_error"
    status = 422


class UnknownMethod(PrivacyError, LookupError):
    code = "unknown_method"
    status = 400


class MethodOptionError(PrivacyError, ValueError):
    """An option passed to a synthesizer is unknown or out of range."""

    code = "invalid_option"
    status = 400


class DomainTooLarge(PrivacyError):
    """The schema's domain is too large for the method; refused before reading data."""

    code = "domain_too_large"
    status = 422


class DisclosureInfeasible(PrivacyError):
    """The public schema and policy predict that k-anonymity would suppress the release; refused before any cost."""

    code = "disclosure_infeasible"
    status = 422


class RequestRefused(PrivacyError, ValueError):
    """A release request the method, the schema or the dataset's limits refuse, before any cost."""

    code = "invalid_request"
    status = 400


class BudgetExceeded(PrivacyError):
    """A cost the remaining budget cannot pay."""

    code = "budget_exceeded"
    status = 409


class PolicyViolation(PrivacyError):
    """The dataset policy forbids this release (e.g. non-DP under dp-only)."""

    code = "policy_violation"
    status = 403


class MissingDependency(PrivacyError):
    """An optional library a method needs is not installed."""

    code = "missing_dependency"
    status = 501


class PostprocessSettingError(PrivacyError, ValueError):
    """A setting for a re-run of post-processing that is unknown, out of range, or would change the sample."""

    code = "invalid_postprocess_setting"
    status = 400
