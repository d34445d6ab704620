"""JSON API for re-running a release's post-processing on its stored sample (core/candidates.py).

`POST /releases/<id>/rerun` queues a re-run (a new candidate) and charges nothing;
`GET /releases/<id>/candidates` lists the candidates and
`GET /releases/<id>/candidates/<n>/report` gives one's internal report. All are for stewards:
an analyst who may see the release gets 403, anyone else 404, as elsewhere.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from core import candidates, releases
from core.db import session_scope, write_session
from core.errors import Forbidden, NotFound, ServiceUnavailable
from core.models import ReleaseCandidate, Role
from core.storage import get_storage
from webapp.api import _attach, _json
from webapp.auth import api_user, record_auth_failure, settings
from webapp.headers import REPORT_CSP, REPORT_FRAME_OPTIONS

log = logging.getLogger(__name__)

__all__ = ["api_candidates"]

api_candidates = Blueprint("api_candidates", __name__, url_prefix="/api/v1")


@api_candidates.post("/releases/<int:job_id>/rerun")
def rerun(job_id: int):  # type: ignore[no-untyped-def]
    """Re-run post-processing with other settings. Body: {"policy": {...}, "schema": {"columns": {...}},
    "rows": N, "comment": "..."} (all optional)."""
    user = api_user()
    body = _json()
    cfg = settings()
    with write_session(cfg) as s:
        user = _attach(user, s)
        try:
            job = releases.get_job(s, user, job_id)
            cand = candidates.request_rerun(s, get_storage(cfg), user, job, body)
        except (NotFound, Forbidden) as exc:
            record_auth_failure(f"re-run release {job_id}: {exc.message}", actor=user.username, action="authz.denied")
            raise
        cand_id = cand.id
    from workers.enqueue import enqueue_rerun

    try:
        enqueue_rerun(cand_id, cfg)
    except Exception as exc:
        log.exception("could not enqueue candidate %s", cand_id)
        from workers.rerun import fail_candidate

        fail_candidate(cfg, cand_id, "queue_unavailable", "the job queue is unavailable; try again shortly", repr(exc))
        raise ServiceUnavailable(
            "the job queue is unavailable; the re-run was not queued. Try again shortly", code="queue_unavailable"
        ) from exc
    with session_scope(cfg) as s:
        cand = s.get(ReleaseCandidate, cand_id)
        assert cand is not None
        return jsonify({"candidate": candidates.candidate_view(cand)}), 202


@api_candidates.get("/releases/<int:job_id>/candidates")
def list_candidates(job_id: int) -> Response:
    user = api_user()
    with session_scope(settings()) as s:
        user = _attach(user, s)
        try:
            job = releases.get_job(s, user, job_id)
            if user.role not in (Role.steward.value, Role.admin.value):
                raise Forbidden("the candidates of a release are for stewards and admins")
        except (NotFound, Forbidden) as exc:
            record_auth_failure(
                f"candidates of release {job_id}: {exc.message}", actor=user.username, action="authz.denied"
            )
            raise
        return jsonify(
            {
                "candidate": job.candidate,
                "candidates": [candidates.candidate_view(c) for c in candidates.candidates_of(s, job.id)],
            }
        )


@api_candidates.get("/releases/<int:job_id>/candidates/<int:number>/report")
def candidate_report(job_id: int, number: int) -> Response:
    """A candidate's internal report (stewards and admins), to choose which candidate to approve."""
    user = api_user()
    fmt = request.args.get("format", "html")
    with session_scope(settings()) as s:
        user = _attach(user, s)
        try:
            job = releases.get_job(s, user, job_id)
            key = candidates.candidate_report_key(s, user, job, number, fmt)
        except (NotFound, Forbidden) as exc:
            record_auth_failure(
                f"candidate {number} report of release {job_id}: {exc.message}",
                actor=user.username,
                action="authz.denied",
            )
            raise
    data = get_storage(settings()).get_bytes(key)
    resp = Response(data, mimetype="application/json" if fmt == "json" else "text/html")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = REPORT_CSP
    resp.headers["X-Frame-Options"] = REPORT_FRAME_OPTIONS
    return resp
