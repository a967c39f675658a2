"""One error shape for the API, ``{"error": {"code", "message"}}``, and readable pages for people."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from inkwell.intake import UploadError

DATABASE_RETRY_AFTER_SECONDS = 5


def api_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/readyz")


def _code_for(error: HTTPException) -> str:
    return (error.name or "error").lower().replace(" ", "_").replace("'", "")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(UploadError)
    def _upload_error(error: UploadError):
        if _wants_json():
            return api_error(error.status, error.code, error.message)
        return render_template("error.html", status=error.status, message=error.message), error.status

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        if status == 413:
            message = "the upload is larger than this server accepts"
            code = "request_too_large"
        else:
            message = error.description or error.name
            code = _code_for(error)
        if _wants_json():
            return api_error(status, code, message)
        return render_template("error.html", status=status, message=message), status

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_unavailable(error: Exception):
        # The database is down or restarting: a temporary condition, not a fault of the request.
        app.logger.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.path,
            type(getattr(error, "orig", error)).__name__,
        )
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
        message = "the database cannot be reached right now; try again shortly"
        if _wants_json():
            return api_error(503, "database_unavailable", message, headers)
        return render_template("error.html", status=503, message=message), 503, headers

    @app.errorhandler(TimeoutError)
    def _client_too_slow(error: TimeoutError):
        # The web server's read timeout fired while the body was being read: the client stalled.
        app.logger.warning("client stalled during %s %s", request.method, request.path)
        if _wants_json():
            return api_error(408, "request_timeout", "the request was not received in time")
        return render_template("error.html", status=408, message="The request was not received in time."), 408

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return api_error(500, "internal_error", "an unexpected error occurred; it has been logged")
        return render_template("error.html", status=500, message="An unexpected error occurred."), 500
