"""Database engine and sessions for SQLite (default) and PostgreSQL.

SQLite is made fit for several processes (web, workers) on one machine: WAL
journal, a busy timeout, foreign keys on, and transactions begun by SQLAlchemy
itself with BEGIN IMMEDIATE, taking the write lock before the first read
(transactions here are short; no computation runs inside one). That is what makes a check-then-insert (the
ledger's reservation) atomic across processes. On PostgreSQL the same code
takes a row lock (SELECT ... FOR UPDATE) instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings, get_settings

__all__ = ["dispose_engines", "get_engine", "make_engine", "session_scope", "write_session"]

_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}
_lock = threading.Lock()


def make_engine(url: str) -> Engine:
    """A new engine for `url`, with the SQLite adjustments described above."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy emit BEGIN itself
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:
            # IMMEDIATE by default: a deferred transaction that reads and then writes
            # fails with "database is locked" when another process wrote in between;
            # taking the write lock up front makes it wait (busy_timeout) instead.
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    url = settings.database_url
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
            _factories[url] = sessionmaker(bind=_engines[url], expire_on_commit=False)
        return _engines[url]


def _factory(settings: Settings | None) -> sessionmaker[Session]:
    settings = settings or get_settings()
    get_engine(settings)
    return _factories[settings.database_url]


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    session = _factory(settings)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def write_session(settings: Settings | None = None) -> Iterator[Session]:
    """A session whose transaction holds the database write lock from its start.

    SQLite: BEGIN IMMEDIATE. PostgreSQL: an ordinary transaction; callers lock
    the rows they check with `with_for_update()`.
    """
    session = _factory(settings)()
    try:
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_engines() -> None:
    """Drop pooled connections (after fork, and in tests)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _factories.clear()
