"""The OpenAPI 3.1 document of ``/api/v1``, its schemas generated from ``inkwell.schemas``."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic.json_schema import models_json_schema

from inkwell import schemas
from inkwell.states import JobStatus

REF = "#/components/schemas/{model}"
MODELS = (
    schemas.ErrorResponse,
    schemas.JobAccepted,
    schemas.JobOut,
    schemas.JobList,
    schemas.LineDetail,
    schemas.LineCorrection,
    schemas.LineAcceptance,
    schemas.AttentionOut,
    schemas.EmbeddingOut,
    schemas.PageReviewed,
    schemas.SearchResult,
    schemas.SimilarResult,
    schemas.LineGeometry,
    schemas.NewLine,
    schemas.LineSplit,
    schemas.LineMerge,
    schemas.PageLines,
    schemas.JobDeleted,
)
NO_NUL = "^[^\\x00]*$"  # text holds no NUL character (refused with 400: the database cannot store it)
# Search words: no NUL, and something besides white space (the server strips it; nothing left is a 400).
# White space spelled out as Python's str.strip() sees it: a JSON Schema pattern's \s (JavaScript's)
# differs from it on \x1c-\x1f, \x85 and \ufeff.
_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
SEARCH_WORDS = f"^[^\\x00]*[^\\x00{_SPACE}][^\\x00]*$"
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before polling again.", "schema": {"type": "integer"}}}


def _ref(model: str) -> dict[str, str]:
    return {"$ref": REF.format(model=model)}


def _json(model: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": _ref(model)}}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str) -> dict[str, Any]:
    return _json("ErrorResponse", description)


def _path(name: str) -> dict[str, Any]:
    if name == "job_id":
        return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": NO_NUL}}
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    }


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _operation(
    summary: str,
    operation_id: str,
    responses: dict[str, Any],
    scope: str | None,
    parameters: list | None = None,
    body: dict | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "operationId": operation_id, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = body
    if scope is None:
        operation["security"] = []  # public
    else:
        operation["description"] = f"Needs the `{scope}` scope (or a signed-in reviewer)."
        responses.setdefault("401", _error("No credentials, or a token that is unknown or revoked."))
        responses.setdefault("403", _error(f"The token lacks the `{scope}` scope."))
        responses.setdefault(
            "400", _error("Unusable input: a NUL character, text that is not valid Unicode, a number out of range.")
        )
        responses.setdefault(
            "503",
            {**_error("The database cannot be reached; try again after Retry-After seconds."), "headers": RETRY_AFTER},
        )
    return operation


EMBEDDING_FORMAT = _query(
    "format",
    {"type": "string", "enum": ["json", "npy"], "default": "json"},
    "json: the vector with its model and layer; npy: a NumPy .npy file (float32, 1-D).",
)


def _embedding_responses(kind: str) -> dict[str, Any]:
    return {
        "200": {
            "description": "The embedding, with the model and encoder layer it comes from.",
            "content": {
                "application/json": {"schema": _ref("EmbeddingOut")},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "400": _error("Unknown format."),
        "404": _error(f"No such {kind} (or not the caller's), or it has no embedding yet."),
    }


EDITED = {
    "200": _json("PageLines", "The page's lines after the edit, renumbered; `changed` are being read again."),
    "404": _error("No such line or page (or not the caller's)."),
}


def _body(model: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The whole document (built once per process)."""
    _, definitions = models_json_schema([(model, "serialization") for model in MODELS], ref_template=REF)
    job_id, line_id, page_id = _path("job_id"), _path("line_id"), _path("page_id")
    upload_body = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "format": "binary"},
                            "description": "PNG, JPEG, WebP, TIFF (every page) or PDF (every page) files.",
                        },
                        "layout": {
                            "type": "string",
                            "enum": ["page", "line"],
                            "default": "page",
                            "description": "'page': find the text lines of each page; 'line': each page is one text "
                            "line.",
                        },
                        "callback_url": {
                            "type": "string",
                            "format": "uri",
                            "maxLength": 2000,
                            "description": "POSTed the job summary when the job finishes, signed with the token's "
                            "webhook secret "
                            "(X-Inkwell-Signature: t=<time>,v1=<HMAC-SHA256 of '<time>.<body>'>).",
                        },
                    },
                    "required": ["files"],
                }
            }
        },
    }
    paths = {
        "/api/v1/jobs": {
            "post": _operation(
                "Submit scans as a new job",
                "submitJob",
                {
                    "202": _json(
                        "JobAccepted",
                        "Stored and queued.",
                        {"Location": {"description": "URL of the job.", "schema": {"type": "string"}}, **RETRY_AFTER},
                    ),
                    "400": _error("No file, an empty one, an unknown layout, a bad Idempotency-Key or callback_url."),
                    "413": _error(
                        "A file, the request, a page's pixel count or the number of pages is over the limit."
                    ),
                    "415": _error("A file is not in a supported format."),
                    "422": _error(
                        "A file is damaged, incomplete, password-protected, a page is too small to hold text, "
                        "or the Idempotency-Key was used for another submission."
                    ),
                },
                "submit",
                [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                        "description": "A retried submission with the same key and content returns the first job "
                        "(header Idempotent-Replayed: true).",
                    }
                ],
                body=upload_body,
            ),
            "get": _operation(
                "Recent jobs, newest first",
                "listJobs",
                {
                    "200": _json("JobList", "The jobs the caller may see."),
                    "400": _error("A filter is not valid."),
                },
                "read",
                [
                    _query("status", {"type": "string", "enum": [status.value for status in JobStatus]}),
                    _query("since", {"type": "string", "format": "date"}, "Submitted on or after this date."),
                    _query("until", {"type": "string", "format": "date"}, "Submitted before this date."),
                    _query(
                        "needs_review",
                        {"type": "string", "enum": ["1", "true"]},
                        "Only jobs with lines needing review.",
                    ),
                    _query(
                        "file",
                        {"type": "string", "maxLength": 255, "pattern": NO_NUL},
                        "Only jobs with a file whose name contains this (any case).",
                    ),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
                ],
            ),
        },
        "/api/v1/jobs/{job_id}": {
            "get": _operation(
                "Status, progress and results of a job",
                "getJob",
                {
                    "200": _json("JobOut", "The job. While it runs, Retry-After says when to poll again.", RETRY_AFTER),
                    "404": _error("No such job (or not the caller's)."),
                },
                "read",
                [job_id],
            ),
            "delete": _operation(
                "Delete a job with all its data (files, images, lines, history); recorded in the audit log",
                "deleteJob",
                {
                    "200": _json("JobDeleted", "Deleted: what went with it."),
                    "404": _error("No such job (or not the caller's)."),
                },
                "delete",
                [job_id],
            ),
        },
        "/api/v1/jobs/{job_id}/result": {
            "get": _operation(
                "The finished job's result",
                "getJobResult",
                {
                    "200": {
                        "description": "json: the job; txt: pages separated by form feeds; csv: a row per line; "
                        "fields: a row per field (label, value); "
                        "alto: ALTO XML v4; pagexml: a ZIP of PAGE XML 2019 files, one per page.",
                        "content": {
                            "application/json": {"schema": _ref("JobOut")},
                            "text/plain": {"schema": {"type": "string"}},
                            "text/csv": {"schema": {"type": "string"}},
                            "application/xml": {"schema": {"type": "string"}},
                            "application/zip": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "400": _error("Unknown format."),
                    "404": _error("No such job (or not the caller's)."),
                    "409": _error("The job has not finished yet."),
                },
                "read",
                [
                    job_id,
                    _query(
                        "format",
                        {
                            "type": "string",
                            "enum": ["json", "txt", "csv", "fields", "alto", "pagexml"],
                            "default": "json",
                        },
                    ),
                ],
            )
        },
        "/api/v1/lines/{line_id}": {
            "get": _operation(
                "A line with its tokens and correction history",
                "getLine",
                {
                    "200": _json("LineDetail", "The line."),
                    "404": _error("No such line (or not the caller's)."),
                },
                "read",
                [line_id],
            ),
            "patch": _operation(
                "Correct a line, accept it as read, or move or resize its box (it is read again)",
                "patchLine",
                {
                    "200": _json("LineDetail", "The line after the change, with its history."),
                    "400": _error('The body is not {"text": ...}, {"reviewed": true} or {"bbox": [x0, y0, x1, y1]}.'),
                    "404": _error("No such line (or not the caller's)."),
                    "409": _error(
                        "The line has not been read yet (a correction), or the page has not, or the box is not on "
                        "the page or too small (a move)."
                    ),
                },
                "review",
                [line_id],
                {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"oneOf": [_ref("LineCorrection"), _ref("LineAcceptance"), _ref("LineGeometry")]}
                        }
                    },
                },
            ),
            "delete": _operation(
                "Delete a line (a stamp, a rule); the rest are renumbered; recorded in the audit log",
                "deleteLine",
                {
                    **EDITED,
                    "409": _error("The page has not been read yet."),
                },
                "review",
                [line_id],
            ),
        },
        "/api/v1/lines/{line_id}/split": {
            "post": _operation(
                "Cut a line in two at a page coordinate; both parts are read again",
                "splitLine",
                {
                    **EDITED,
                    "400": _error('The body is not {"at": number, "axis": "x" or "y"}.'),
                    "409": _error("The page has not been read yet, or the cut is not inside the line."),
                },
                "review",
                [line_id],
                _body("LineSplit"),
            )
        },
        "/api/v1/pages/{page_id}/lines": {
            "get": _operation(
                "The page's lines in reading order",
                "getPageLines",
                {
                    "200": _json("PageLines", "The lines (one being read again has no text yet)."),
                    "404": _error("No such page (or not the caller's)."),
                },
                "read",
                [page_id],
            ),
            "post": _operation(
                "Draw a new line (a box); it is cut out and read",
                "drawLine",
                {
                    "201": _json("PageLines", "The page's lines, renumbered; the new one in `changed`."),
                    "400": _error('The body is not {"bbox": [x0, y0, x1, y1]}.'),
                    "404": _error("No such page (or not the caller's)."),
                    "409": _error("The page has not been read yet, or the box is not on the page or too small."),
                },
                "review",
                [page_id],
                _body("NewLine"),
            ),
        },
        "/api/v1/pages/{page_id}/lines/merge": {
            "post": _operation(
                "Merge lines of a page into one, read again",
                "mergeLines",
                {
                    **EDITED,
                    "400": _error('The body is not {"line_ids": [...]} with two or more different ids.'),
                    "404": _error("No such page, or a line is not one of its lines (or not the caller's)."),
                    "409": _error("The page has not been read yet."),
                },
                "review",
                [page_id],
                _body("LineMerge"),
            )
        },
        "/api/v1/lines/{line_id}/image": {
            "get": _operation(
                "The straightened line image the model read",
                "getLineImage",
                {
                    "200": {
                        "description": "PNG",
                        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "404": _error("No such line, or it has no image."),
                },
                "read",
                [line_id],
            )
        },
        "/api/v1/lines/{line_id}/attention": {
            "get": _operation(
                "Where the model looked for each token",
                "getLineAttention",
                {
                    "200": {
                        "description": "JSON maps, or a PNG heat map over the line image.",
                        "content": {
                            "application/json": {"schema": _ref("AttentionOut")},
                            "image/png": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "400": _error("Unknown format, or a token index that is not a whole number."),
                    "404": _error("No such line, no attention stored, or no such token in this line."),
                },
                "read",
                [
                    line_id,
                    _query("format", {"type": "string", "enum": ["json", "png"], "default": "json"}),
                    _query(
                        "token",
                        {"type": "integer", "minimum": 0, "maximum": 100_000},
                        "PNG only: this token's map (default: the whole line).",
                    ),
                ],
            )
        },
        "/api/v1/lines/{line_id}/embedding": {
            "get": _operation(
                "The line's image embedding",
                "getLineEmbedding",
                _embedding_responses("line"),
                "read",
                [line_id, EMBEDDING_FORMAT],
            )
        },
        "/api/v1/pages/{page_id}/embedding": {
            "get": _operation(
                "The page's image embedding (mean of its lines')",
                "getPageEmbedding",
                _embedding_responses("page"),
                "read",
                [page_id, EMBEDDING_FORMAT],
            )
        },
        "/api/v1/pages/{page_id}/review": {
            "post": _operation(
                "Mark a page reviewed",
                "reviewPage",
                {
                    "200": _json("PageReviewed", "Marked; says whether the whole job is now reviewed."),
                    "404": _error("No such page (or not the caller's)."),
                    "409": _error("The page has not been read."),
                },
                "review",
                [page_id],
            )
        },
        "/api/v1/pages/{page_id}/similar": {
            "get": _operation(
                "Pages with the most similar image embedding",
                "similarPages",
                {
                    "200": _json("SimilarResult", "Ranked by cosine similarity."),
                    "404": _error("No such page (or not the caller's)."),
                },
                "read",
                [page_id],
            )
        },
        "/api/v1/search": {
            "get": _operation(
                "Lines containing every word of q, as read or as corrected",
                "search",
                {
                    "200": _json("SearchResult", "Matching lines, newest jobs first."),
                    "400": _error("No query."),
                },
                "read",
                [
                    {
                        "name": "q",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "pattern": SEARCH_WORDS},
                    }
                ],
            )
        },
        "/api/v1/openapi.json": {
            "get": _operation(
                "This document",
                "getOpenAPI",
                {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
                None,
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Inkwell",
            "version": "1",
            "description": "Reads handwriting on scanned forms. Submit scans, poll the job, fetch the result, review "
            "lines. "
            'Every error response has the shape {"error": {"code", "message"}}.',
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from `inkwell token create`."}
            },
        },
    }
