"""Settings in one place, read from SYNTHGATE_* environment variables.

Defaults give a single machine with no setup: everything under one data
directory (SQLite database, file-system broker, storage). Production points
SYNTHGATE_DATABASE_URL at PostgreSQL and SYNTHGATE_BROKER_URL at Redis.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

__all__ = ["ENV_PREFIX", "Settings", "get_settings"]

ENV_PREFIX = "SYNTHGATE_"


def _bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """Every setting of the service. Build with `Settings.from_env(**overrides)`."""

    data_dir: Path = Path("synthgate-data")
    database_url: str = ""  # default: sqlite under data_dir
    broker_url: str = ""  # default: file-system broker under data_dir
    storage_dir: Path | None = None  # default: data_dir / "storage"
    storage_url: str = ""  # s3://bucket/prefix: an S3-compatible object store instead of storage_dir
    s3_endpoint_url: str = ""  # the store's endpoint when it is not AWS (MinIO, Ceph RGW, GCS)
    s3_region: str = ""
    s3_sse: str = ""  # server-side encryption of every object: AES256 or aws:kms
    metrics_token: str = ""  # GET /metrics (Prometheus) answers only this bearer token; empty: no /metrics
    task_events: bool = True  # Celery task events, for Flower and `celery events`
    signing_key_pem: str = ""  # the Ed25519 bundle-signing key (PKCS8 PEM); default: data_dir/signing_key.pem
    secret_key: str = ""  # default: generated once into data_dir / "secret_key"
    max_upload_mb: int = 200
    batch_read_above_mb: int = 64  # larger uploads are counted and validated in batches (privacy.table_scan)
    max_rows: int = 5_000_000
    lease_seconds: int = 60  # a running job's heartbeat lease
    heartbeat_seconds: int = 10
    reaper_seconds: int = 15  # how often a worker looks for jobs whose worker died
    max_attempts: int = 3  # runs of one job before it is marked failed
    worker_concurrency: int = 1
    default_epsilon_budget: str = "3"
    default_delta_budget: str = "1e-6"
    session_cookie_secure: bool = False
    session_max_hours: int = 8  # a login lasts at most this long, however active
    download_link_seconds: int = 300
    log_level: str = "INFO"
    audit_checkpoint_every: int = 100  # a permanent signed audit checkpoint each time this many events accrue
    # bounded work and jobs never lost
    job_time_limit_seconds: int = 3600  # hard limit of one run of a job, for methods not in job_time_limits
    job_time_limits: str = ""  # per-method limits in seconds, e.g. "mst=600,dpctgan=7200"
    stop_grace_seconds: int = 30  # a stopped job's worker process is ended if it has not stopped by then
    requeue_after_seconds: int = 300  # a queued job not claimed this long is sent to the queue again
    # passwords: length and a zxcvbn strength score (0-4); common passwords are always refused
    password_min_length: int = 8
    password_min_score: int = 2
    # brute-force limits ("N per M minutes", the `limits` notation); failures only are counted
    login_fail_limit_account: str = "10 per 15 minutes"
    login_fail_limit_client: str = "100 per 15 minutes"
    token_fail_limit_client: str = "100 per 15 minutes"
    api_limit_account: str = "1200 per minute"
    rate_limit_storage_url: str = ""  # default: the Redis broker when there is one, else in-process memory
    proxy_hops: int = 0  # reverse proxies in front of the web app whose X-Forwarded-* headers are trusted
    # budgets: a raise above the confirm ceiling waits for a second steward; above the maximum it is refused
    budget_confirm_epsilon: str = "10"
    budget_max_epsilon: str = "100"
    budget_confirm_delta: str = "1e-5"
    budget_max_delta: str = "1e-3"
    # notifications (core/notifications.py): nothing configured, nothing sent
    smtp_url: str = ""  # smtp://user:password@host:port, or smtps:// for TLS from the start
    smtp_starttls: bool = False  # with smtp://: upgrade the connection with STARTTLS before logging in
    mail_from: str = ""  # the From address of notification mail; default: synthgate@<smtp host>
    public_url: str = ""  # the service's address as users reach it: the base of the links in notifications
    webhook_url: str = ""  # POSTed a signed JSON event for each notification
    webhook_secret: str = ""  # the HMAC-SHA256 key of the webhook's X-Synthgate-Signature
    notify_timeout_seconds: int = 10  # per attempt, for mail and webhook alike
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            if f.type in ("int",):
                values[f.name] = int(raw)
            elif f.type in ("bool",):
                values[f.name] = _bool(raw)
            elif f.name in ("data_dir", "storage_dir"):
                values[f.name] = Path(raw)
            else:
                values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        return cls(**values).resolved()

    def resolved(self) -> Settings:
        """Fill derived defaults (absolute paths, URLs, a persistent secret key)."""
        data_dir = self.data_dir.expanduser().resolve()
        storage = (self.storage_dir or data_dir / "storage").expanduser().resolve()
        db = self.database_url or f"sqlite:///{data_dir / 'synthgate.db'}"
        broker = self.broker_url or f"filesystem://{(data_dir / 'broker').as_posix()}"
        return replace(
            self,
            data_dir=data_dir,
            storage_dir=storage,
            database_url=db,
            broker_url=broker,
            secret_key=self.secret_key or "",
        )

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def broker_folder(self) -> Path:
        return Path(self.broker_url.removeprefix("filesystem://"))

    @property
    def rate_limit_storage(self) -> str:
        """Where the rate-limit counters live: shared Redis when the broker is Redis, else per process."""
        if self.rate_limit_storage_url:
            return self.rate_limit_storage_url
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return "memory://"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def job_time_limit(self, method: str) -> int:
        """The hard time limit, in seconds, of one run of a job of `method`."""
        for part in self.job_time_limits.replace(";", ",").split(","):
            name, sep, value = part.partition("=")
            if sep and name.strip() == method:
                return int(value.strip())
        return self.job_time_limit_seconds

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        assert self.storage_dir is not None
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        if self.uses_filesystem_broker:
            (self.broker_folder / "queue").mkdir(parents=True, exist_ok=True)
            (self.broker_folder / "processed").mkdir(parents=True, exist_ok=True)

    def get_secret_key(self) -> str:
        """The server's secret (sessions, signed links, bundle signatures).

        From SYNTHGATE_SECRET_KEY, else generated once into data_dir/secret_key
        (mode 0600) so that every process on the machine shares it.
        """
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            create_once(path, secrets.token_hex(32).encode())
        return path.read_text().strip()

    def env(self) -> dict[str, str]:
        """These settings as environment variables, for child processes."""
        out = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value in (None, ""):
                continue
            out[ENV_PREFIX + f.name.upper()] = str(int(value) if isinstance(value, bool) else value)
        return out


def create_once(path: Path, content: bytes) -> None:
    """Write `content` to `path` (mode 0600) unless the file exists, safely across processes.

    The content goes to a private temporary file first and is linked into place, so that a
    process reading `path` sees either no file or the whole of it, and when several processes
    race, the first link wins and every process reads that one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(
            FileExistsError
        ):  # another process won the race: its key is the one every process uses
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_cached: Settings | None = None


def get_settings(refresh: bool = False) -> Settings:
    """Process-wide settings from the environment (cached)."""
    global _cached
    if _cached is None or refresh:
        _cached = Settings.from_env()
    return _cached
