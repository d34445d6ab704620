"""JSON API for controlling running work: cancel a queued or running release."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from core import releases
from core.db import write_session
from core.errors import Forbidden, NotFound
from webapp.api import _attach, _json
from webapp.auth import api_user, record_auth_failure, settings

api_jobs = Blueprint("api_jobs", __name__, url_prefix="/api/v1")


@api_jobs.post("/releases/<int:job_id>/cancel")
def cancel(job_id: int) -> Response:
    """Cancel a queued or running release (its requester or a steward). Body: {"reason": "..."} (optional)."""
    user = api_user()
    body = _json()
    with write_session(settings()) as s:
        user = _attach(user, s)
        try:
            job = releases.get_job(s, user, job_id)
            outcome = releases.cancel_release(s, user, job, reason=str(body.get("reason") or "") or None)
        except (NotFound, Forbidden) as exc:
            record_auth_failure(f"cancel release {job_id}: {exc.message}", actor=user.username, action="authz.denied")
            raise
        return jsonify({"cancelled": outcome, "release": releases.job_view(s, user, job)})
