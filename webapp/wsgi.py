"""WSGI entry point for gunicorn: `gunicorn webapp.wsgi:app` (settings from SYNTHGATE_*)."""

from webapp import create_app

app = create_app()
