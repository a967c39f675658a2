"""The shapes of what the HTTP API returns; the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

JobStatusName = Literal["queued", "processing", "succeeded", "failed", "partial"]
PageStatusName = Literal["queued", "prepared", "succeeded", "failed"]


def _aware(value: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were stored in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, AfterValidator(_aware)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Strict):
    code: str = Field(description="Stable, machine-readable reason, e.g. 'invalid_image'.")
    message: str = Field(description="Human-readable explanation.")


class ErrorResponse(Strict):
    error: ErrorDetail


class JobAccepted(Strict):
    id: str
    status: Literal["queued"]


class TokenOut(Strict):
    text: str
    confidence: float


class LineOut(Strict):
    id: int
    number: int = Field(description="1-based reading order within the page.")
    text: str = Field(description="The reviewer's correction where there is one, else the model's reading.")
    model_text: str | None = Field(description="What the model read.")
    corrected: bool
    confidence: float | None = Field(description="Geometric mean of the token probabilities (end token included).")
    bbox: list[int] = Field(description="[x0, y0, x1, y1] in page pixels.", min_length=4, max_length=4)
    polygon: list[list[int]] | None = Field(
        description="Corner points [[x, y], ...] in page pixels, when the line was detected."
    )
    detection_confidence: float | None = Field(description="How sure the line detector was that this is text.")
    text_type: Literal["printed", "handwritten"] | None = Field(
        description="Printed (a form's labels) or handwritten, as the line finder's classifier judged; null for lines found before it existed."
    )
    text_type_confidence: float | None = Field(description="The classifier's probability for that text type (0.5-1).")
    tokens: list[TokenOut] | None
    reviewed: bool = Field(description="A reviewer accepted or corrected it.")


class FieldOut(Strict):
    page: int = Field(description="1-based page number within the job.")
    key: str = Field(description="The printed label, without its colon.")
    value: str = Field(
        description="The handwritten value: its lines' final text (a reviewer's correction where there is one), joined by spaces."
    )
    confidence: float | None = Field(
        description="The lowest confidence of the value's lines (a corrected line counts as 1)."
    )
    key_line_id: int
    value_line_ids: list[int]
    bbox: list[int] = Field(
        description="[x0, y0, x1, y1] around the label and its value, in page pixels.", min_length=4, max_length=4
    )
    corrected: bool = Field(description="A reviewer corrected a line of the value.")


class PageOut(Strict):
    id: int
    number: int = Field(description="1-based position in the job.")
    filename: str = Field(description="The uploaded file this page comes from.")
    source_page: int = Field(description="1-based page within that file (PDF and TIFF files have several).")
    status: PageStatusName
    error: str | None
    width: int | None
    height: int | None
    text: str | None = Field(description="The page's lines in reading order, once read.")
    reviewed: bool
    lines: list[LineOut]
    fields: list[FieldOut] = Field(description="Printed labels paired with their handwritten values, in reading order.")


class Progress(Strict):
    pages_total: int
    pages_done: int
    pages_failed: int
    lines_total: int
    lines_done: int


class JobOut(Strict):
    id: str
    status: JobStatusName
    created_at: Timestamp
    finished_at: Timestamp | None
    model: str | None
    error: str | None
    reviewed: bool = Field(description="Every read page has been marked reviewed.")
    progress: Progress
    pages: list[PageOut]
    fields: list[FieldOut] = Field(
        description="Every read page's fields, page by page (each page's are also in its `fields`)."
    )


class JobSummary(Strict):
    id: str
    status: JobStatusName
    created_at: Timestamp
    finished_at: Timestamp | None
    reviewed: bool
    needs_review: int = Field(description="Lines below the review threshold that no one has accepted or corrected.")
    progress: Progress


class JobList(Strict):
    jobs: list[JobSummary]


class LineEditOut(Strict):
    text: str
    previous: str
    author: str
    at: Timestamp


class LineDetail(LineOut):
    history: list[LineEditOut] = Field(description="Every correction, oldest first.")


class LineCorrection(Strict):
    """Set the line's text (a correction; the history keeps what it was)."""

    text: str = Field(description="The corrected text of the line.", max_length=2000, pattern=r"^[^\x00]*$")


class LineAcceptance(Strict):
    """Accept the line as the model read it."""

    reviewed: Literal[True]


class AttentionOut(Strict):
    line_id: int
    text: str | None
    tokens: list[TokenOut]
    grid: list[int] = Field(description="[rows, columns] of the encoder's patch grid over the line image.")
    maps: list[list[list[float]]] = Field(
        description="Per token, its cross-attention over the grid (each map sums to 1)."
    )
    polygon: list[list[int]] | None
    bbox: list[int]
    crop_pad: float = Field(
        description="The line image covers the polygon grown by this many line heights on every side."
    )


class PageReviewed(Strict):
    page_id: int
    reviewed: bool
    job_reviewed: bool


class SearchHitOut(Strict):
    job_id: str
    page_number: int
    line_id: int
    line_number: int
    text: str
    corrected: bool
    filename: str


class SearchResult(Strict):
    query: str
    hits: list[SearchHitOut]


class SimilarPageOut(Strict):
    page_id: int
    job_id: str
    page_number: int
    filename: str
    similarity: float


class SimilarResult(Strict):
    page_id: int
    similar: list[SimilarPageOut]


class EmbeddingOut(Strict):
    kind: Literal["page", "line"]
    id: int
    model: str | None = Field(description="The model whose encoder produced it.")
    layer: int | None = Field(
        description="Encoder hidden-state index it was pooled from (0 = patch embeddings, 1..L = blocks); "
        "null: the encoder's final output."
    )
    dimensions: int
    embedding: list[float] = Field(
        description="L2-normalised mean of the encoder's patch states (a page's: the mean of its lines')."
    )
