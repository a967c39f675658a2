"""One error shape for the API, ``{"error": {"code", "message"}}``, and readable pages for people."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from inkwell.errors import ErrorCode, Refused

DATABASE_RETRY_AFTER_SECONDS = 5

# The one place a refusal becomes an HTTP status.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.JOB_NOT_FINISHED: 409,
    ErrorCode.NOT_REVIEWABLE: 409,
    # well formed, but it does not fit the page as it is (a 422 for schema-valid input would read
    # as a broken contract to the schema fuzzer)
    ErrorCode.NOT_EDITABLE: 409,
    ErrorCode.INVALID_LINE_EDIT: 409,
    ErrorCode.FILE_TOO_LARGE: 413,
    ErrorCode.TOO_MANY_FILES: 413,
    ErrorCode.TOO_MANY_PAGES: 413,
    ErrorCode.IMAGE_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.INVALID_IMAGE: 422,
    ErrorCode.INVALID_DOCUMENT: 422,
    ErrorCode.ENCRYPTED_PDF: 422,
    ErrorCode.IMAGE_TOO_SMALL: 422,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
}


def http_status(code: ErrorCode) -> int:
    """The HTTP status of a refusal: 400 (a malformed request) unless listed in HTTP_STATUS."""
    return HTTP_STATUS.get(code, 400)


def api_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """The JSON error body ``{"error": {"code", "message"}}`` (for refusals and the framework's own errors)."""
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
    @app.errorhandler(Refused)
    def _refused(error: Refused):
        status = http_status(error.code)
        headers = {}
        if error.retry_after_seconds is not None:
            headers["Retry-After"] = str(error.retry_after_seconds)
        if error.code == ErrorCode.UNAUTHORIZED:
            headers["WWW-Authenticate"] = 'Bearer realm="inkwell"'
        if _wants_json():
            return api_error(status, error.code.value, error.message, headers)
        return render_template("error.html", status=status, message=error.message), status, headers

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
