"""One exception hierarchy for everything the service answers with an error.

The API's error body is `{"error": {"code": ..., "message": ..., "field": ...}}`; `error_from_response`
turns it (and its HTTP status) into one of the classes below, keeping the code, the message and the field
as the service wrote them:

- `Refused`: the request was refused as asked (bad input, no permission, over the privacy budget or the
  policy); change what `field` and `message` say and ask again;
- `NotFound`: no such dataset or release, or one you may not see (the service does not tell them apart);
- `Conflict`: the object is not in a state that allows it (approving a release that is not awaiting
  approval, a name already taken);
- `Unavailable`: the service is up but cannot serve it right now (503: its database or job queue);
  `retry_after` says when to come back;
- `Unreachable`: no answer at all (wrong URL, service down, network, timeout);
- `BundleInvalid`: a downloaded bundle failed verification; `problems` lists why.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BundleInvalid",
    "Conflict",
    "NotFound",
    "Refused",
    "SynthgateError",
    "Unavailable",
    "Unreachable",
    "WaitTimeout",
    "error_from_response",
]


class SynthgateError(Exception):
    """An error from the service (or from reaching it): its stable `code`, `message`, HTTP `status`
    (None when no answer came back) and the request `field` it concerns, if any."""

    def __init__(self, code: str, message: str, status: int | None = None, field: str | None = None) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" [{self.field}]" if self.field else ""
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.code}{where}: {self.message}{status}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"status={self.status!r}, field={self.field!r})"
        )


class Refused(SynthgateError):
    """The service refused the request as asked: bad input, no permission, over the budget or the policy."""


class NotFound(SynthgateError):
    """No such object, or one this account may not see."""


class Conflict(SynthgateError):
    """The object's state does not allow the action (e.g. approving a release that is still running)."""


class Unavailable(SynthgateError):
    """The service answered 503: its database or job queue is unavailable; try again after `retry_after`."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = 503,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(code, message, status, field)


class Unreachable(SynthgateError):
    """No answer from the service: the URL is wrong, it is not running, or the network or a timeout failed."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(
            "unreachable",
            f"cannot reach synthgate at {url} ({reason}): is it running? Pass url= to Client or set SYNTHGATE_URL",
        )


class WaitTimeout(SynthgateError, TimeoutError):
    """`Release.wait` gave up before the release stopped running."""


class BundleInvalid(SynthgateError):
    """A bundle failed verification: a bad signature, a changed or missing file, or an unsafe zip."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__("bundle_invalid", f"{path} failed verification: " + "; ".join(self.problems))


# Codes that are refusals of the request as asked, whatever status carries them: the budget is a 409
# on the API (the ledger's state), but what the caller must change is the request.
_REFUSAL_CODES = frozenset({"budget_exceeded", "policy_violation"})
_REFUSAL_STATUSES = frozenset({400, 401, 403, 405, 413, 415, 422, 429})


def error_from_response(status: int, body: Any, text: str = "", retry_after: str | None = None) -> SynthgateError:
    """The exception for an error answer: `body` is its parsed JSON (or None), `text` its raw text."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and isinstance(err.get("code"), str):
        code = err["code"]
        message = str(err.get("message") or "")
        field = err.get("field") if isinstance(err.get("field"), str) else None
    else:  # not the service's error body (a proxy's page, say): keep the start of what came back
        code, message, field = "http_error", (text.strip()[:300] or f"HTTP {status}"), None
    if status == 503:
        try:
            wait = float(retry_after) if retry_after is not None else None
        except ValueError:
            wait = None
        return Unavailable(code, message, status, field, retry_after=wait)
    if code in _REFUSAL_CODES or status in _REFUSAL_STATUSES:
        return Refused(code, message, status, field)
    if status == 404:
        return NotFound(code, message, status, field)
    if status == 409:
        return Conflict(code, message, status, field)
    return SynthgateError(code, message, status, field)
