"""The Flask application factory.

`create_app(config)` takes a `Settings` (or overrides for one) so tests pass
their own configuration instead of patching globals.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from core.settings import Settings

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app"]

MAX_DATABASE_ID = 2**63 - 1  # the largest id a BIGINT (and SQLite's INTEGER) holds


def create_app(config: Settings | dict[str, Any] | None = None) -> Flask:
    if isinstance(config, Settings):
        settings = config
    else:
        settings = Settings.from_env(**(config or {}))
    from flask import Flask  # here, so the command line (webapp.cli) starts without loading Flask

    settings.ensure_dirs()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.get_secret_key(),
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=8),
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        JSON_SORT_KEYS=False,
        SYNTHGATE=settings,
    )
    if settings.proxy_hops > 0:
        # behind a reverse proxy every request comes from the proxy's address: take the client's from the
        # X-Forwarded-For the proxies set (only that many hops, so a client cannot forge its own)
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    register_converters(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_headers(app)
    logging.getLogger("synthgate").setLevel(settings.log_level)
    return app


def register_converters(app: Flask) -> None:
    """`<int:...>` in routes matches database ids only (1 to 2**63 - 1): a larger number is a 404
    for a thing that does not exist, not an overflow in the database driver."""
    from werkzeug.routing import IntegerConverter

    class DatabaseId(IntegerConverter):
        def __init__(self, map, *args, **kwargs):  # type: ignore[no-untyped-def]
            kwargs.setdefault("max", MAX_DATABASE_ID)
            super().__init__(map, *args, **kwargs)

    app.url_map.converters["int"] = DatabaseId


def register_extensions(app: Flask) -> None:
    from webapp.auth import flush_pending_audit, load_user
    from webapp.extensions import csrf, login_manager

    app.teardown_request(flush_pending_audit)
    login_manager.init_app(app)
    login_manager.login_view = "pages.login"
    login_manager.user_loader(load_user)
    csrf.init_app(app)
    from webapp.ratelimit import init_rate_limits

    init_rate_limits(app, app.config["SYNTHGATE"])


def register_blueprints(app: Flask) -> None:
    from webapp.api import api
    from webapp.api_accounts import api_accounts
    from webapp.api_jobs import api_jobs
    from webapp.extensions import csrf
    from webapp.pages import pages

    csrf.exempt(api)  # the API authenticates state changes with bearer tokens, not cookies
    csrf.exempt(api_accounts)
    app.register_blueprint(api)
    csrf.exempt(api_jobs)
    app.register_blueprint(api_jobs)
    from webapp.api_candidates import api_candidates

    csrf.exempt(api_candidates)
    app.register_blueprint(api_candidates)
    app.register_blueprint(api_accounts)
    app.register_blueprint(pages)
    from webapp.api_audit import api_audit

    app.register_blueprint(api_audit)
    from webapp.metrics import metrics

    app.register_blueprint(metrics)


def register_headers(app: Flask) -> None:
    from webapp.headers import register_security_headers

    register_security_headers(app, secure_cookies=app.config["SYNTHGATE"].session_cookie_secure)


def register_error_handlers(app: Flask) -> None:
    from webapp.errors import register_error_handlers as register

    register(app)
