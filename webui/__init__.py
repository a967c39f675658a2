"""Inkwell's web side: Flask app factory. Never imports torch; talks to workers through the broker."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask, Response
from flask_wtf.csrf import CSRFProtect
from werkzeug.routing import BaseConverter, ValidationError

from inkwell.config import Settings, get_settings
from inkwell.db import Database
from inkwell.queue import declare_sql_broker_queues, make_celery
from webui.headers import SECURITY_HEADERS

csrf = CSRFProtect()


class RowIdConverter(BaseConverter):
    """``<row_id:name>``: a positive integer that fits the database's INTEGER; anything else is a 404."""

    regex = r"[0-9]{1,10}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 0 < number <= MAX_ROW_ID:
            raise ValidationError()
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


MAX_ROW_ID = 2**31 - 1


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app for ``settings`` (default: from the environment)."""
    from webui import api_edits  # noqa: F401 - adds the line-editing and job-deletion routes to the blueprint
    from webui.api import api
    from webui.auth import init_auth
    from webui.errors import register_error_handlers
    from webui.input_guard import init_input_guard
    from webui.metrics import init_metrics
    from webui.state import EXTENSION
    from webui.views import views

    settings = settings or get_settings()
    app = Flask(__name__)
    app.url_map.converters["row_id"] = RowIdConverter
    app.config.update(
        SECRET_KEY=settings.resolved_secret_key(),
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        MAX_FORM_PARTS=settings.max_files_per_job + 20,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        SESSION_REFRESH_EACH_REQUEST=True,  # the lifetime counts from the last request: idle sessions expire
    )
    app.logger.setLevel(getattr(logging, settings.log_level))
    celery = make_celery(settings)
    # Few attempts: gunicorn stops a worker that takes 120 s to start. Not reachable: submissions
    # still land in the database, and the sweeper sends them.
    declare_sql_broker_queues(celery, attempts=3)
    app.extensions[EXTENSION] = {"settings": settings, "database": Database(settings), "celery": celery}
    init_input_guard(app)  # first: refuse what no check after it should ever see
    csrf.init_app(app)
    init_auth(app)
    csrf.exempt(api)  # API clients send no browser cookies, so CSRF does not apply to them
    app.register_blueprint(api)
    app.register_blueprint(views)
    register_error_handlers(app)
    init_metrics(app)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app
