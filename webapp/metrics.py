"""`GET /metrics`: Prometheus metrics of the service, for operators.

Off unless `SYNTHGATE_METRICS_TOKEN` is set; a scraper then sends it as a bearer
token (Prometheus: `authorization: {credentials: ...}`). Everything is read from
the database and the broker at scrape time, so any web process answers for the
whole installation:

* `synthgate_release_jobs{status, kind}`: releases by state;
* `synthgate_release_candidates{status}`: re-runs of post-processing by state;
* `synthgate_stage_seconds_total{stage}` and `synthgate_stage_runs_total{stage}`:
  time spent in each pipeline stage by every release so far (rate() of the two
  gives the mean stage duration over a window);
* `synthgate_queue_depth{queue}`: messages waiting in each Celery queue (Redis
  broker);
* `synthgate_budget_epsilon{dataset, state}` and `synthgate_budget_delta{...}`:
  each dataset's budget, spent and reserved.

The figures are counts, durations and budgets: nothing read from a table. They do
name datasets and show activity, which is why the endpoint needs its own token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, request

from webapp.auth import settings

log = logging.getLogger(__name__)

metrics = Blueprint("metrics", __name__)


class _Collector:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        from sqlalchemy import func, select

        from core.db import session_scope
        from core.ledger import ledger_summary
        from core.models import Dataset, ReleaseCandidate, ReleaseJob

        jobs = GaugeMetricFamily("synthgate_release_jobs", "Releases by state and kind", labels=["status", "kind"])
        cands = GaugeMetricFamily(
            "synthgate_release_candidates", "Re-runs of post-processing by state", labels=["status"]
        )
        stage_seconds = CounterMetricFamily(
            "synthgate_stage_seconds", "Seconds spent in each pipeline stage", labels=["stage"]
        )
        stage_runs = CounterMetricFamily("synthgate_stage_runs", "Pipeline stages run", labels=["stage"])
        eps = GaugeMetricFamily(
            "synthgate_budget_epsilon", "Each dataset's epsilon: budget, spent, reserved", labels=["dataset", "state"]
        )
        delta = GaugeMetricFamily(
            "synthgate_budget_delta", "Each dataset's delta: budget, spent, reserved", labels=["dataset", "state"]
        )
        seconds: dict[str, float] = {}
        runs: dict[str, int] = {}
        with session_scope(self.cfg) as s:
            for status, kind, n in s.execute(
                select(ReleaseJob.status, ReleaseJob.kind, func.count()).group_by(ReleaseJob.status, ReleaseJob.kind)
            ):
                jobs.add_metric([status, kind], n)
            for status, n in s.execute(select(ReleaseCandidate.status, func.count()).group_by(ReleaseCandidate.status)):
                cands.add_metric([status], n)
            for (timings,) in s.execute(select(ReleaseJob.timings).where(ReleaseJob.timings.is_not(None))):
                for stage, value in (timings or {}).items():
                    if isinstance(value, int | float):
                        seconds[stage] = seconds.get(stage, 0.0) + float(value)
                        runs[stage] = runs.get(stage, 0) + 1
            for ds in s.execute(select(Dataset).order_by(Dataset.id)).scalars():
                status = ledger_summary(s, ds).status
                for state, cost in (("budget", status.budget), ("spent", status.spent), ("reserved", status.reserved)):
                    eps.add_metric([ds.name, state], float(cost.epsilon))
                    delta.add_metric([ds.name, state], float(cost.delta))
        for stage in sorted(seconds):
            stage_seconds.add_metric([stage], seconds[stage])
            stage_runs.add_metric([stage], runs[stage])
        yield from (jobs, cands, stage_seconds, stage_runs, eps, delta)
        depth = self._queue_depth()
        if depth is not None:
            yield depth

    def _queue_depth(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        from workers.celery_app import QUEUES

        if not self.cfg.broker_url.startswith(("redis://", "rediss://")):
            return None
        import redis

        gauge = GaugeMetricFamily("synthgate_queue_depth", "Messages waiting in each Celery queue", labels=["queue"])
        client = redis.Redis.from_url(self.cfg.broker_url, socket_timeout=5)
        try:
            for queue in QUEUES:
                waiting = sum(int(client.llen(k)) for k in (queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9))))
                gauge.add_metric([queue], waiting)
        except redis.RedisError:
            log.warning("metrics: the broker could not be read", exc_info=True)
            return None
        finally:
            client.close()
        return gauge


@metrics.get("/metrics")
def scrape() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    cfg = settings()
    if not cfg.metrics_token:
        abort(404)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {cfg.metrics_token}".encode()):
        return Response(
            "metrics need the bearer token of SYNTHGATE_METRICS_TOKEN\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": "Bearer"},
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(cfg))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
