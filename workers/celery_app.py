"""The Celery application, configured from synthgate's settings.

Redis when SYNTHGATE_BROKER_URL is redis://...; otherwise kombu's file-system
transport under the data directory, which needs no server. Either way the
worker is a separate process (`synthgate worker`).

Reliability settings: late acks and reject-on-worker-lost, so a task whose
worker process dies is redelivered; prefetch of one, so a busy worker does not
hold jobs another could run. Tasks are idempotent by job id (see
workers/jobs.py), which makes redelivery safe.
"""

from __future__ import annotations

from celery import Celery

from core.settings import Settings, get_settings

TASK_RUN_RELEASE = "synthgate.run_release"
TASK_RERUN_POSTPROCESS = "synthgate.rerun_postprocess"
QUEUE = "releases"
HEAVY_QUEUE = "releases-heavy"  # methods whose fit takes minutes (GANs, VAEs, MWEM): their own workers
QUEUES = (QUEUE, HEAVY_QUEUE)


def queue_for(method: str | None) -> str:
    """The queue of a release of `method`: the heavy one for methods the catalogue marks heavy."""
    if not method:
        return QUEUE
    from privacy.catalogue import method_entry

    try:
        return HEAVY_QUEUE if method_entry(method).heavy else QUEUE
    except Exception:  # noqa: BLE001 - a method the catalogue does not know is refused at request time; quick here
        return QUEUE


def celery_config(settings: Settings) -> dict:
    conf: dict = {
        "broker_url": settings.broker_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "result_backend": None,
        "task_default_queue": QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": True,
        # Flower and `celery events` follow the work (a networked broker; the embedded file broker has no fanout)
        "worker_send_task_events": settings.task_events and not settings.uses_filesystem_broker,
        "task_send_sent_event": settings.task_events and not settings.uses_filesystem_broker,
    }
    if settings.uses_filesystem_broker:
        folder = settings.broker_folder
        conf["broker_url"] = "filesystem://"
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            # same file system as the queue: claiming a message is an atomic rename
            "store_processed": True,
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            # each poll lists the queue folders, idle or while a job runs: an idle worker used 0.78 CPU s in
            # 20 s polling every 0.1 s, 0.10 every 0.5 s; a release starts at most half a second after its
            # request
            "polling_interval": 0.5,
        }
        conf["worker_enable_remote_control"] = False
    elif settings.broker_url.startswith(("redis://", "rediss://")):
        # a job is redelivered if unacked this long; the job lease, not this, detects dead workers
        conf["broker_transport_options"] = {"visibility_timeout": 6 * 3600}
    return conf


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    settings.ensure_dirs()
    app = Celery("synthgate")
    app.conf.update(celery_config(settings))
    app.conf.include = ["workers.tasks"]
    return app


_apps: dict[str, Celery] = {}


def get_celery(settings: Settings | None = None) -> Celery:
    """The Celery app for these settings (one per broker, cached): used to enqueue."""
    settings = settings or get_settings()
    if settings.broker_url not in _apps:
        _apps[settings.broker_url] = make_celery(settings)
    return _apps[settings.broker_url]


# the app `celery -A workers.celery_app worker` runs, configured from the environment
celery_app = get_celery()
