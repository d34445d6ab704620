"""Celery tasks: thin wrappers that take ids, claim, run the pipeline, record the outcome."""

from __future__ import annotations

import logging
import traceback

from celery import signals

from core.db import dispose_engines
from core.errors import ServiceError
from core.memory import no_huge_pages_for_numpy
from core.settings import get_settings
from core.storage import get_storage
from privacy.errors import PrivacyError
from workers.celery_app import HEAVY_QUEUE, TASK_RERUN_POSTPROCESS, TASK_RUN_RELEASE, celery_app
from workers.jobs import JobControl, JobStopped, LeaseLost, Reaper, claim, fail_job, worker_identity

log = logging.getLogger(__name__)

_reaper: Reaper | None = None


@celery_app.task(name=TASK_RUN_RELEASE, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_release(job_id: int) -> str:
    """Run one release job. Idempotent: a job already claimed or finished is left alone."""
    settings = get_settings()
    owner = worker_identity()
    if not claim(job_id, owner, settings):
        log.info("job %s: nothing to claim (finished, or running elsewhere)", job_id)
        return "skipped"
    from evaluation.lanes import busy_core
    from workers.pipeline import PipelineError, run_pipeline

    control = JobControl(
        job_id, owner, settings, time_limit=settings.job_time_limit(_method(job_id)), hard_exit=_in_pool_process()
    )
    try:
        with busy_core(), control:  # a core this job keeps busy: the report forks a lane only beside a free one
            run_pipeline(job_id, control, settings, get_storage(settings))
        return "done"
    except (LeaseLost, JobStopped):
        # cancelled, timed out (the job is already failed) or taken over: nothing more to write
        log.warning(
            "job %s: stopped (%s); this worker writes nothing more", job_id, control.stop_reason or "lease lost"
        )
        return "stopped"
    except PipelineError as exc:
        fail_job(settings, job_id, exc.code, exc.public, exc.detail, owner=owner)
        return "failed"
    except (PrivacyError, ServiceError) as exc:
        # user-fixable; once real rows were read the message may describe them, so the
        # requester gets a summary and the steward the details
        public = (
            exc.message
            if not _data_read(job_id)
            else (f"the release could not be produced ({exc.code}); the steward can see the details")
        )
        fail_job(settings, job_id, exc.code, public, exc.message, owner=owner)
        return "failed"
    except MemoryError:
        fail_job(
            settings,
            job_id,
            "out_of_memory",
            "the worker ran out of memory; ask for fewer rows or a coarser schema (fewer bins/categories)",
            owner=owner,
        )
        return "failed"
    except Exception as exc:
        log.exception("job %s: internal error", job_id)
        fail_job(
            settings,
            job_id,
            "internal_error",
            "an internal error stopped the release; the steward can see the details",
            f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=20)}",
            owner=owner,
        )
        return "failed"


@celery_app.task(name=TASK_RERUN_POSTPROCESS, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def rerun_postprocess(candidate_id: int) -> str:
    """Re-run post-processing of a finished job on its stored sample, as one candidate. Charges nothing;
    idempotent: a candidate already claimed or finished is left alone."""
    from workers.rerun import CandidateControl, claim_candidate, fail_candidate

    settings = get_settings()
    owner = worker_identity()
    if not claim_candidate(candidate_id, owner, settings):
        log.info("candidate %s: nothing to claim (finished, or running elsewhere)", candidate_id)
        return "skipped"
    from evaluation.lanes import busy_core
    from workers.pipeline import PipelineError, run_rerun

    job_id = _candidate_job(candidate_id)
    control = CandidateControl(
        candidate_id,
        job_id,
        owner,
        settings,
        time_limit=settings.job_time_limit(_method(job_id)),
        hard_exit=_in_pool_process(),
    )
    try:
        with busy_core(), control:
            run_rerun(candidate_id, control, settings, get_storage(settings))
        return "done"
    except (LeaseLost, JobStopped):
        log.warning("candidate %s: stopped (%s)", candidate_id, control.stop_reason or "lease lost")
        return "stopped"
    except PipelineError as exc:
        fail_candidate(settings, candidate_id, exc.code, exc.public, exc.detail, owner=owner)
        return "failed"
    except (PrivacyError, ServiceError) as exc:  # only stewards see a candidate: the message may be whole
        fail_candidate(settings, candidate_id, exc.code, exc.message, owner=owner)
        return "failed"
    except MemoryError:
        fail_candidate(settings, candidate_id, "out_of_memory", "the worker ran out of memory", owner=owner)
        return "failed"
    except Exception as exc:
        log.exception("candidate %s: internal error", candidate_id)
        fail_candidate(
            settings,
            candidate_id,
            "internal_error",
            "an internal error stopped the re-run",
            f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=20)}",
            owner=owner,
        )
        return "failed"


def _candidate_job(candidate_id: int) -> int:
    from core.db import session_scope
    from core.models import ReleaseCandidate

    with session_scope(get_settings()) as s:
        cand = s.get(ReleaseCandidate, candidate_id)
        assert cand is not None
        return cand.job_id


def _method(job_id: int) -> str:
    from core.db import session_scope
    from core.models import ReleaseJob

    with session_scope(get_settings()) as s:
        job = s.get(ReleaseJob, job_id)
        return job.method if job else ""


def _in_pool_process() -> bool:
    """True in a prefork pool process, which may be ended (the pool replaces it); never the main process."""
    from billiard.process import current_process

    return current_process().name != "MainProcess"


def _data_read(job_id: int) -> bool:
    from core.db import session_scope
    from core.models import ReleaseJob

    with session_scope(get_settings()) as s:
        job = s.get(ReleaseJob, job_id)
        return bool(job and job.data_read)


@signals.worker_process_init.connect
def _after_fork(**_: object) -> None:
    dispose_engines()  # never share database connections across processes
    no_huge_pages_for_numpy()  # a release allocates and frees large arrays one after another
    _warm_up()
    if serves_heavy_methods():
        from privacy.synthesizers._torch_threads import one_torch_thread

        if one_torch_thread():  # before any fit: steady GAN times, as the time model assumes
            log.info("torch set to one thread for the heavy methods")


def serves_heavy_methods() -> bool:
    """Whether this worker consumes the heavy queue (GANs, VAEs): the -Q it was started with."""
    return HEAVY_QUEUE in celery_app.amqp.queues.consume_from


def _warm_up() -> None:
    """Import what every release needs once per worker process, before the first job.

    Keeps a fresh worker's first release as fast as its later ones (the heavy
    libraries of optional methods, torch, SDV, JAX, still load only when used).
    """
    try:
        import sklearn.ensemble
        import sklearn.linear_model  # noqa: F401

        import evaluation.fidelity
        import evaluation.privacy_risk
        import evaluation.render
        import evaluation.utility  # noqa: F401
        import privacy.disclosure
        import privacy.engine
        import privacy.synthesizers.native  # noqa: F401
        import workers.pipeline  # noqa: F401
    except Exception:  # a warm-up failure must not stop the worker; the job will report it
        log.exception("warm-up imports failed")


@signals.worker_ready.connect
def _start_reaper(**_: object) -> None:
    global _reaper
    settings = get_settings()
    from workers.enqueue import enqueue_release, enqueue_rerun, held_job_ids
    from workers.rerun import reap_candidates
    from workers.retention import retention_sweep

    _reaper = Reaper(
        settings,
        lambda job_id: enqueue_release(job_id, settings),
        held=lambda: held_job_ids(settings),
        sweeps={
            "re-run": lambda: reap_candidates(settings, lambda cid: enqueue_rerun(cid, settings)),
            "retention": retention_sweep(settings),
        },
    )
    _reaper.start()
    log.info(
        "reaper started (every %ss, lease %ss, unclaimed jobs re-sent after %ss)",
        settings.reaper_seconds,
        settings.lease_seconds,
        settings.requeue_after_seconds,
    )


@signals.worker_shutdown.connect
def _stop_reaper(**_: object) -> None:
    if _reaper is not None:
        _reaper.stop()
