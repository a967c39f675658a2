"""The OpenAPI 3.1 document of ``/api/v1``, its schemas generated from ``inkwell.schemas``."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic.json_schema import models_json_schema

from inkwell.schemas import ErrorResponse, JobAccepted, JobOut

REF = "#/components/schemas/{model}"


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}}}


def _json(model: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}}}
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before polling again.", "schema": {"type": "integer"}}}
JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The whole document (built once per process)."""
    _, definitions = models_json_schema(
        [(ErrorResponse, "serialization"), (JobAccepted, "serialization"), (JobOut, "serialization")],
        ref_template=REF,
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Inkwell",
            "version": "1",
            "description": "Reads handwriting on scanned forms. Submit pages, poll the job, fetch the result. "
            "Every error response has the shape {\"error\": {\"code\", \"message\"}}.",
        },
        "paths": {
            "/api/v1/jobs": {
                "post": {
                    "summary": "Submit page images as a new job",
                    "operationId": "submitJob",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                                                  "description": "PNG, JPEG, WebP, TIFF (every page) or PDF (every page) files."},
                                        "layout": {"type": "string", "enum": ["page", "line"], "default": "page",
                                                   "description": "'page': find the text lines of each page; 'line': each page is one text line."},
                                    },
                                    "required": ["files"],
                                },
                            }
                        },
                    },
                    "responses": {
                        "202": _json("JobAccepted", "Stored and queued.", {
                            "Location": {"description": "URL of the job.", "schema": {"type": "string"}}, **RETRY_AFTER}),
                        "400": _error("No file, an empty one, or an unknown layout."),
                        "413": _error("A file, the request, a page's pixel count or the number of pages is over the limit."),
                        "415": _error("A file is not in a supported format."),
                        "422": _error("A file is damaged, incomplete, password-protected, or a page is too small to hold text."),
                    },
                }
            },
            "/api/v1/jobs/{job_id}": {
                "get": {
                    "summary": "Status, progress and results of a job",
                    "operationId": "getJob",
                    "parameters": [JOB_ID],
                    "responses": {
                        "200": _json("JobOut", "The job. While it runs, Retry-After says when to poll again.", RETRY_AFTER),
                        "404": _error("No such job."),
                    },
                }
            },
            "/api/v1/jobs/{job_id}/result": {
                "get": {
                    "summary": "The finished job's result",
                    "operationId": "getJobResult",
                    "parameters": [
                        JOB_ID,
                        {"name": "format", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": ["json", "txt", "csv", "alto", "pagexml"], "default": "json"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "json: the job; txt: pages separated by form feeds; csv: a row per line; "
                            "alto: ALTO XML v4; pagexml: a ZIP of PAGE XML 2019 files, one per page.",
                            "content": {
                                "application/json": {"schema": {"$ref": REF.format(model="JobOut")}},
                                "text/plain": {"schema": {"type": "string"}},
                                "text/csv": {"schema": {"type": "string"}},
                                "application/xml": {"schema": {"type": "string"}},
                                "application/zip": {"schema": {"type": "string", "format": "binary"}},
                            },
                        },
                        "400": _error("Unknown format."),
                        "404": _error("No such job."),
                        "409": _error("The job has not finished yet."),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {"summary": "This document", "operationId": "getOpenAPI",
                        "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}},
            },
        },
        "components": {"schemas": definitions["$defs"]},
    }
