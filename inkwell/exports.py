"""Exports of a finished job: CSV, ALTO XML v4 and PAGE XML 2019 (JSON and text live in results.py).

Every export uses the final text (a reviewer's correction where there is one). Word boxes are
laid along each line's polygon where the model's cross-attention says it read each word (in
proportion to the characters for corrected lines); word confidence is the geometric mean of the
model's probabilities for the tokens that make up the word, and is left out for corrected lines,
where the model's tokens no longer apply.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

import numpy as np

import inkwell
from inkwell.arrays import unpack_array
from inkwell.geometry import LINE_CROP_PAD
from inkwell.models import Job, Line, Page, PageStatus

ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
ALTO_SCHEMA = "http://www.loc.gov/standards/alto/v4/alto-4-4.xsd"
PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
PAGE_SCHEMA = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15/pagecontent.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SOFTWARE = "Inkwell"


@dataclass(frozen=True)
class Word:
    text: str
    polygon: list[tuple[float, float]]  # four corners
    confidence: float | None

    @property
    def box(self) -> tuple[float, float, float, float]:
        xs, ys = [p[0] for p in self.polygon], [p[1] for p in self.polygon]
        return min(xs), min(ys), max(xs), max(ys)


def finished_pages(job: Job) -> list[Page]:
    return [page for page in job.pages if page.status == PageStatus.SUCCEEDED]


def line_polygon(line: Line) -> list[tuple[float, float]]:
    """The line's four corners (top-left, top-right, bottom-right, bottom-left)."""
    if line.polygon and len(line.polygon) == 4:
        return [(float(x), float(y)) for x, y in line.polygon]
    x0, y0, x1, y1 = line.bbox
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _token_spans(line: Line) -> list[tuple[int, int, float]]:
    spans, offset = [], 0
    for token in line.tokens or []:
        text = token["text"]
        stripped = len(text) - len(text.lstrip()) if offset == 0 else 0  # the line text is stripped
        spans.append((offset, offset + len(text) - stripped, token["confidence"]))
        offset += len(text) - stripped
    return spans


def _token_centres(line: Line, spans: list[tuple[int, int, float]]) -> np.ndarray | None:
    """Where along the line polygon (0 = left, 1 = right) the model looked for each token.

    The attention-weighted mean column of each token's map, made non-decreasing (text runs left
    to right), converted from the line image (the polygon grown by its crop margin) to the polygon.
    None when there is no usable attention (corrected lines, maps that do not spread along the line).
    """
    if line.attention is None or not spans:
        return None
    maps = unpack_array(line.attention).astype(np.float32)
    if maps.ndim != 3 or maps.shape[0] != len(spans) or maps.shape[2] < 2:
        return None
    columns = maps.sum(axis=1)  # tokens x columns
    centres = (
        (columns * (np.arange(columns.shape[1]) + 0.5)).sum(axis=1)
        / np.maximum(columns.sum(axis=1), 1e-9)
        / columns.shape[1]
    )
    centres = np.maximum.accumulate(centres)
    if centres[-1] - centres[0] < 0.2:
        return None
    corners = line_polygon(line)
    width = math.dist(corners[0], corners[1]) or 1.0
    height = (math.dist(corners[0], corners[3]) + math.dist(corners[1], corners[2])) / 2
    margin = LINE_CROP_PAD * height if line.polygon else 0.0
    return np.clip((centres * (width + 2 * margin) - margin) / width, 0.0, 1.0)


def words(line: Line) -> list[Word]:
    """The line's words with boxes along its polygon and, where the model's text stands, confidences.

    Word boxes follow the model's cross-attention (where it looked while writing the word's tokens)
    when there is any; otherwise, and for corrected lines, they divide the line by character count.
    """
    text = line.final_text
    corners = line_polygon(line)
    spans = _token_spans(line) if line.corrected_text is None else []
    centres = _token_centres(line, spans)
    step = float(np.median(np.diff(centres))) / 2 if centres is not None and len(centres) > 1 else 0.0
    length = max(len(text), 1)

    def at(fraction: float, top: bool) -> tuple[float, float]:
        a, b = (corners[0], corners[1]) if top else (corners[3], corners[2])
        return (a[0] + (b[0] - a[0]) * fraction, a[1] + (b[1] - a[1]) * fraction)

    found: list[Word] = []
    position = 0
    for piece in text.split(" "):
        start, end = position, position + len(piece)
        position = end + 1
        if not piece:
            continue
        covering = [i for i, (s, e, _) in enumerate(spans) if s < end and e > start]
        if centres is not None and covering:
            left = max(0.0, float(centres[covering[0]]) - step)
            right = min(1.0, float(centres[covering[-1]]) + step)
        else:
            left, right = start / length, end / length
        polygon = [at(left, True), at(right, True), at(right, False), at(left, False)]
        probabilities = [spans[i][2] for i in covering]
        confidence = (
            math.exp(sum(math.log(max(p, 1e-12)) for p in probabilities) / len(probabilities))
            if probabilities
            else None
        )
        found.append(Word(piece, polygon, confidence))
    return found


# -- CSV -----------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "page",
    "line",
    "x0",
    "y0",
    "x1",
    "y1",
    "text",
    "confidence",
    "corrected",
    "file",
    "file_page",
    "text_type",
    "text_type_confidence",
)
FIELDS_CSV_COLUMNS = (
    "page",
    "key",
    "value",
    "confidence",
    "corrected",
    "key_line",
    "value_lines",
    "x0",
    "y0",
    "x1",
    "y1",
    "file",
    "file_page",
)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def export_csv(job: Job) -> str:
    """One row per line: page, line, bounding box, final text, confidence, whether corrected, text type."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for page in finished_pages(job):
        for line in page.lines:
            writer.writerow(
                [
                    page.number,
                    line.number,
                    *line.bbox,
                    line.final_text,
                    _number(line.confidence),
                    "yes" if line.corrected_text is not None else "no",
                    page.upload.filename,
                    page.source_index + 1,
                    line.text_type or "",
                    _number(line.text_type_confidence),
                ]
            )
    return buffer.getvalue()


def export_fields_csv(job: Job) -> str:
    """One row per field (a printed label and its handwritten value), page by page in reading order.

    ``key_line`` and ``value_lines`` are line numbers within the page (as in the lines CSV),
    the value lines separated by spaces.
    """
    from inkwell.results import page_fields

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FIELDS_CSV_COLUMNS)
    for page in finished_pages(job):
        numbers = {line.id: line.number for line in page.lines}
        for field in page_fields(page):
            writer.writerow(
                [
                    page.number,
                    field.key,
                    field.value,
                    _number(field.confidence),
                    "yes" if field.corrected else "no",
                    numbers[field.key_line_id],
                    " ".join(str(numbers[i]) for i in field.value_line_ids),
                    *field.bbox,
                    page.upload.filename,
                    page.source_index + 1,
                ]
            )
    return buffer.getvalue()


# -- ALTO v4 ---------------------------------------------------------------------------------------


def _points(polygon: list[tuple[float, float]]) -> str:
    return " ".join(f"{round(x)},{round(y)}" for x, y in polygon)


def _box_attributes(box: tuple[float, float, float, float]) -> dict[str, str]:
    x0, y0, x1, y1 = box
    return {
        "HPOS": f"{x0:.0f}",
        "VPOS": f"{y0:.0f}",
        "WIDTH": f"{max(x1 - x0, 0):.0f}",
        "HEIGHT": f"{max(y1 - y0, 0):.0f}",
    }


def export_alto(job: Job) -> bytes:
    """The whole job as one ALTO v4 document: a Page per read page, a TextLine per line, a String per word."""
    ET.register_namespace("", ALTO_NS)
    ET.register_namespace("xsi", XSI)
    q = lambda tag: f"{{{ALTO_NS}}}{tag}"  # noqa: E731 - local shorthand for qualified names
    root = ET.Element(q("alto"), {f"{{{XSI}}}schemaLocation": f"{ALTO_NS} {ALTO_SCHEMA}"})
    description = ET.SubElement(root, q("Description"))
    ET.SubElement(description, q("MeasurementUnit")).text = "pixel"
    source = ET.SubElement(description, q("sourceImageInformation"))
    ET.SubElement(source, q("fileName")).text = ", ".join(upload.filename for upload in job.uploads) or job.id
    processing = ET.SubElement(description, q("OCRProcessing"), {"ID": "OCR_0"})
    step = ET.SubElement(processing, q("ocrProcessingStep"))
    ET.SubElement(step, q("processingDateTime")).text = (job.finished_at or datetime.now(UTC)).isoformat()
    ET.SubElement(step, q("processingStepSettings")).text = f"model: {job.model or 'unknown'}"
    software = ET.SubElement(step, q("processingSoftware"))
    ET.SubElement(software, q("softwareName")).text = SOFTWARE
    ET.SubElement(software, q("softwareVersion")).text = inkwell.__version__
    kinds = sorted({line.text_type for page in finished_pages(job) for line in page.lines if line.text_type})
    if kinds:  # the text type of each line, as ALTO tags a line refers to
        tags = ET.SubElement(root, q("Tags"))
        for kind in kinds:
            ET.SubElement(tags, q("OtherTag"), {"ID": f"TYPE_{kind}", "TYPE": "text type", "LABEL": kind})
    layout = ET.SubElement(root, q("Layout"))
    for page in finished_pages(job):
        pid = f"P{page.number}"
        page_el = ET.SubElement(
            layout,
            q("Page"),
            {
                "ID": pid,
                "PHYSICAL_IMG_NR": str(page.number),
                "WIDTH": str(page.width or 0),
                "HEIGHT": str(page.height or 0),
            },
        )
        space = ET.SubElement(page_el, q("PrintSpace"), _box_attributes((0, 0, page.width or 0, page.height or 0)))
        if not page.lines:
            continue
        block = ET.SubElement(space, q("TextBlock"), {"ID": f"{pid}_B1"})
        for line in page.lines:
            polygon = line_polygon(line)
            xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
            attributes = {"ID": f"{pid}_L{line.number}", **_box_attributes((min(xs), min(ys), max(xs), max(ys)))}
            if line.text_type:
                attributes["TAGREFS"] = f"TYPE_{line.text_type}"
            line_el = ET.SubElement(block, q("TextLine"), attributes)
            shape = ET.SubElement(line_el, q("Shape"))
            ET.SubElement(shape, q("Polygon"), {"POINTS": _points(polygon)})
            line_words = words(line) or [Word("", polygon, None)]
            for index, word in enumerate(line_words, start=1):
                if index > 1:
                    ET.SubElement(line_el, q("SP"))
                string = {"ID": f"{pid}_L{line.number}_W{index}", "CONTENT": word.text, **_box_attributes(word.box)}
                if word.confidence is not None:
                    string["WC"] = f"{word.confidence:.4f}"
                ET.SubElement(line_el, q("String"), string)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# -- PAGE XML 2019 ---------------------------------------------------------------------------------


def _text_equiv(parent: ET.Element, text: str, confidence: float | None) -> None:
    q = lambda tag: f"{{{PAGE_NS}}}{tag}"  # noqa: E731
    attributes = {"conf": f"{min(max(confidence, 0.0), 1.0):.4f}"} if confidence is not None else {}
    equiv = ET.SubElement(parent, q("TextEquiv"), attributes)
    ET.SubElement(equiv, q("Unicode")).text = text


def _page_line_attributes(line: Line) -> dict[str, str]:
    """A TextLine's id and text type: PAGE's ``production`` for printed lines (its handwritten values
    tell cursive from print script, which the classifier does not), and for every line a ``custom``
    textType entry with the classifier's answer and confidence."""
    attributes = {"id": f"r1_l{line.number}"}
    if line.text_type:
        if line.text_type == "printed":
            attributes["production"] = "printed"
        confidence = f"; confidence:{line.text_type_confidence:.4f}" if line.text_type_confidence is not None else ""
        attributes["custom"] = f"textType {{type:{line.text_type}{confidence};}}"
    return attributes


def export_page_xml(job: Job, page: Page) -> bytes:
    """One read page as a PAGE XML 2019 document: a text region, its lines and words, with confidences."""
    ET.register_namespace("", PAGE_NS)
    ET.register_namespace("xsi", XSI)
    q = lambda tag: f"{{{PAGE_NS}}}{tag}"  # noqa: E731
    root = ET.Element(q("PcGts"), {f"{{{XSI}}}schemaLocation": f"{PAGE_NS} {PAGE_SCHEMA}"})
    metadata = ET.SubElement(root, q("Metadata"))
    ET.SubElement(metadata, q("Creator")).text = f"{SOFTWARE} {inkwell.__version__} ({job.model or 'unknown model'})"
    created = (job.created_at or datetime.now(UTC)).replace(microsecond=0).isoformat()
    ET.SubElement(metadata, q("Created")).text = created
    ET.SubElement(metadata, q("LastChange")).text = (
        (job.finished_at or job.created_at or datetime.now(UTC)).replace(microsecond=0).isoformat()
    )
    page_name = page.upload.filename + (f"#page={page.source_index + 1}" if page.upload.page_count > 1 else "")
    page_el = ET.SubElement(
        root,
        q("Page"),
        {"imageFilename": page_name, "imageWidth": str(page.width or 0), "imageHeight": str(page.height or 0)},
    )
    if page.lines:
        region = ET.SubElement(page_el, q("TextRegion"), {"id": "r1", "type": "paragraph"})
        ET.SubElement(
            region,
            q("Coords"),
            {
                "points": _points(
                    [(0, 0), (page.width or 0, 0), (page.width or 0, page.height or 0), (0, page.height or 0)]
                )
            },
        )
        for line in page.lines:
            line_el = ET.SubElement(region, q("TextLine"), _page_line_attributes(line))
            ET.SubElement(line_el, q("Coords"), {"points": _points(line_polygon(line))})
            for index, word in enumerate(words(line), start=1):
                word_el = ET.SubElement(line_el, q("Word"), {"id": f"r1_l{line.number}_w{index}"})
                ET.SubElement(word_el, q("Coords"), {"points": _points(word.polygon)})
                _text_equiv(word_el, word.text, word.confidence)
            _text_equiv(line_el, line.final_text, line.confidence if line.corrected_text is None else None)
        _text_equiv(region, "\n".join(line.final_text for line in page.lines), None)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def export_page_xml_zip(job: Job) -> bytes:
    """Every read page as its own PAGE XML file (``page-0001.xml``, ...), in one ZIP archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for page in finished_pages(job):
            archive.writestr(f"page-{page.number:04d}.xml", export_page_xml(job, page))
    return buffer.getvalue()
