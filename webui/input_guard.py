"""Refusing hostile input before it reaches a view or the database.

PostgreSQL cannot store a NUL character in text and refuses it with an error (SQLite takes it and
then matches oddly), and no legitimate path, query, form field, file name or JSON string needs
one; a lone UTF-16 surrogate (``"\\ud800"`` in JSON) cannot be encoded for the database either.
Both are refused with 400 for the whole request, in one place, before any view runs. JSON bodies
are bounded in size and nesting depth before they are parsed (a body nested 100,000 deep would
otherwise exhaust the parser's recursion), and numbers in query strings are parsed strictly:
ASCII digits only (``int()`` takes ``"²"``-like digits that ``str.isdigit`` lets through) and
within stated bounds.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest

MAX_JSON_BYTES = 1 * 2**20
MAX_JSON_DEPTH = 32
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_DIGITS = re.compile(r"[0-9]{1,18}")


class BadInput(BadRequest):
    """A request carrying input no part of Inkwell accepts (400, code ``bad_input``)."""

    name = "Bad Input"


def unusable_text(value: str) -> str | None:
    """Why ``value`` cannot be accepted as text (a NUL, or not encodable as UTF-8), or None."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text"
    return None


def _check(where: str, value: str | None) -> None:
    reason = unusable_text(value or "")  # multipart parts may come without a name
    if reason is not None:
        raise BadInput(f"{where} {reason}")


def refuse_unusable_text() -> None:
    """``before_request``: 400 when the path, the query, a form field or a file name cannot be stored as text."""
    _check("the path", request.path)
    for name, value in request.args.items(multi=True):
        _check("a query parameter name", name)
        _check(f"query parameter {name!r}", value)
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        for name, value in request.form.items(multi=True):
            _check("a form field name", name)
            _check(f"form field {name!r}", value)
        for name, upload in request.files.items(multi=True):
            _check("a file field name", name)
            _check("a file name", upload.filename or "")


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON document ``text`` nests arrays and objects more than ``limit`` deep."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot be deeper than the number of openings
    depth = 0
    for char in _STRINGS.sub("", text):  # brackets inside strings do not nest
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _walk_strings(value: Any) -> None:
    if isinstance(value, str):
        _check("a JSON string", value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check("a JSON key", key)
            _walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            _walk_strings(item)


class GuardedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing (as invalid JSON, so views answer 400) bodies too large or too deep,
    and strings the database cannot store."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if len(s) > MAX_JSON_BYTES:
            raise ValueError(f"the JSON body is larger than {MAX_JSON_BYTES} bytes")
        text = s.decode("utf-8", errors="replace") if isinstance(s, (bytes, bytearray)) else s
        if json_too_deep(text):
            raise ValueError(f"the JSON body nests more than {MAX_JSON_DEPTH} levels deep")
        value = super().loads(s, **kwargs)
        try:
            _walk_strings(value)
        except BadInput as error:
            raise ValueError(error.description) from None
        return value


def bounded_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    """A query parameter as an integer from ``low`` to ``high`` (ASCII digits only); ValueError otherwise."""
    if value is None or value == "":
        return default
    if not _DIGITS.fullmatch(value) or not low <= int(value) <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}")
    return int(value)


def init_input_guard(app: Flask) -> None:
    """Install the checks on ``app`` (call before other ``before_request`` hooks that read the form)."""
    app.json = GuardedJSONProvider(app)
    app.before_request(refuse_unusable_text)
