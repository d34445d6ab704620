"""Security headers on every response, set in one app-wide hook.

* Every response: `X-Content-Type-Options: nosniff`; HSTS when the session
  cookies are secure (the site is served over HTTPS only).
* Every API response: `Cache-Control: no-store` (API bodies carry ledgers,
  reports and tokens), and a CSP and frame protection that forbid rendering or
  framing it, unless the route set its own (the report route sets REPORT_CSP).
* Pages keep the CSP and frame rules of their blueprint (webapp/pages/hooks.py).
"""

from __future__ import annotations

from flask import Flask, Response, request

__all__ = ["API_CSP", "HSTS", "REPORT_CSP", "REPORT_FRAME_OPTIONS", "register_security_headers"]

# the report is HTML written by the evaluation library: no script, no network, no forms, sandboxed
REPORT_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
REPORT_FRAME_OPTIONS = "SAMEORIGIN"
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox"
HSTS = "max-age=31536000; includeSubDomains"


def register_security_headers(app: Flask, *, secure_cookies: bool) -> None:
    """Install the hook; `secure_cookies` is SYNTHGATE_SESSION_COOKIE_SECURE."""

    @app.after_request
    def _security_headers(resp: Response) -> Response:
        resp.headers["X-Content-Type-Options"] = "nosniff"
        if secure_cookies:
            resp.headers["Strict-Transport-Security"] = HSTS
        if request.path.startswith("/api/"):
            resp.headers["Cache-Control"] = "no-store"
            resp.headers.setdefault("Content-Security-Policy", API_CSP)
            resp.headers.setdefault("X-Frame-Options", "DENY")
            resp.headers.setdefault("Referrer-Policy", "no-referrer")
        return resp
