"""Request hooks of the pages: audit refusals, security headers; template globals and filters."""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

from flask import Response, g, request
from flask_login import current_user

from core import audit
from core.db import write_session
from privacy.budget import format_value
from webapp.auth import settings
from webapp.pages.blueprint import pages
from webapp.pages.forms import PostForm
from webapp.pages.helpers import PAGE_CSP, STAFF, STAGE_LABELS

log = logging.getLogger(__name__)


@pages.after_request
def _after(resp: Response) -> Response:
    denials = g.pop("denials", [])
    if denials:
        actor = current_user.username if current_user.is_authenticated else g.get("link_user", "anonymous")
        try:
            with write_session(settings()) as s:
                for action, reason, object_type, object_id in denials:
                    audit.record(
                        s,
                        action,
                        actor=actor,
                        object_type=object_type,
                        object_id=object_id,
                        detail={
                            "reason": reason,
                            "path": request.path,
                            "method": request.method,
                            "ip": request.remote_addr,
                        },
                    )
        except Exception:  # the refusal stands even if its audit write fails; say so in the log
            log.exception("could not audit a refusal on %s", request.path)
    resp.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


@pages.app_context_processor
def _globals() -> dict[str, Any]:
    return {
        "stage_label": lambda stage: STAGE_LABELS.get(stage or "", stage or ""),
        "logout_form": PostForm(),
        "STAFF": STAFF,
    }


def eta_text(seconds: Any) -> str:
    """A stage's estimated time left in words ("about 3 min left in this stage"); "" when unknown.
    app.js writes the same words while the page polls."""
    if seconds is None:
        return ""
    secs = max(0, int(seconds))
    if secs < 60:
        return f"about {max(secs, 1)} s left in this stage"
    return f"about {-(-secs // 60)} min left in this stage"


@pages.app_template_filter("eta")
def _eta(value: Any) -> str:
    return eta_text(value)


@pages.app_template_filter("sig4")
def _sig4(value: Any) -> str:
    """A report figure to 4 significant digits; a dash when there is none."""
    if value is None:
        return "—"
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


@pages.app_template_filter("exact")
def _exact(value: Any) -> str:
    """A stored exact value ('1/10', 'inf') in human form ('0.1', 'inf', '1/3 (0.333333)')."""
    if value is None:
        return "—"
    text = str(value)
    if text in ("inf", "Infinity"):
        return "∞ (not DP)"
    try:
        return format_value(Fraction(text))
    except (ValueError, ZeroDivisionError):
        return text
