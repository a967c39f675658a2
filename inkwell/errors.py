"""The one way the core refuses a request: :class:`Refused`, with a code from :class:`ErrorCode`.

Core errors say what is wrong, never how a transport reports it: ``webui/errors.py`` alone maps each
code to its HTTP status and to the JSON shape ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import enum


class ErrorCode(str, enum.Enum):
    """Why a request is refused (the ``code`` of the error body)."""

    # who is asking
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    CSRF_FAILED = "csrf_failed"
    # the request is malformed
    INVALID_BODY = "invalid_body"
    INVALID_FILTER = "invalid_filter"
    INVALID_STATUS = "invalid_status"
    INVALID_FORMAT = "invalid_format"
    INVALID_TOKEN_INDEX = "invalid_token_index"
    INVALID_LAYOUT = "invalid_layout"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    INVALID_CALLBACK_URL = "invalid_callback_url"
    MISSING_QUERY = "missing_query"
    MISSING_FILE = "missing_file"
    EMPTY_FILE = "empty_file"
    # over a limit
    FILE_TOO_LARGE = "file_too_large"
    TOO_MANY_FILES = "too_many_files"
    TOO_MANY_PAGES = "too_many_pages"
    IMAGE_TOO_LARGE = "image_too_large"
    # the content cannot be used
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    INVALID_IMAGE = "invalid_image"
    INVALID_DOCUMENT = "invalid_document"
    ENCRYPTED_PDF = "encrypted_pdf"
    IMAGE_TOO_SMALL = "image_too_small"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    # the state of what is asked for
    NOT_FOUND = "not_found"
    JOB_NOT_FINISHED = "job_not_finished"
    NOT_REVIEWABLE = "not_reviewable"
    NOT_EDITABLE = "not_editable"  # the page is not read yet
    INVALID_LINE_EDIT = "invalid_line_edit"  # a box off the page, a cut outside the line


class Refused(Exception):
    """A request Inkwell refuses: ``code`` says why in a word, ``message`` in a sentence for people.

    ``retry_after_seconds``: the same request may succeed after this long (a job still running).
    """

    def __init__(self, code: ErrorCode, message: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_seconds = retry_after_seconds
