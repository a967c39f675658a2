"""Finding the text lines of a page, and cutting them out straight.

Detection is PP-OCR's DB text detector as shipped inside the ``rapidocr`` package (ONNX Runtime,
no download). Its boxes are then cleaned up for reading: specks are dropped, boxes that swallowed
two lines are split at the blank between them, fragments of one line (words the detector saw
apart) are joined, and the result is put in reading order. Each line is cut from the page at its
original resolution with a perspective warp, which also straightens slightly rotated lines.

Bilevel pages (fax TIFFs, dithered scans) are smoothed to grey before detection only: the
detector was trained on grey images and loses a third of the lines of a dithered page, while
a one-pixel blur gives them all back. The lines are still cut from the page as it came.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageFilter

from inkwell.geometry import LINE_CROP_PAD
from worker.reading_order import reading_order

log = logging.getLogger(__name__)

SPECK_HEIGHT = 0.35  # of the median line height
SPLIT_HEIGHT = 1.75  # a box this many median heights tall holds two lines or more
JOIN_GAP = 1.0  # fragments closer than this many line heights on one row are one line
BILEVEL_SHARE = 0.99  # a page with this share of pure black or white pixels is bilevel
BILEVEL_BLUR = 1.0  # pixels of Gaussian blur that turn dither back into grey for the detector


@dataclass(frozen=True)
class FoundLine:
    """A text line on the page: corner points (top-left, top-right, bottom-right, bottom-left) and score."""

    quad: np.ndarray  # 4 x 2 float32, page pixels
    score: float

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        x0, y0 = np.floor(self.quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(self.quad.max(axis=0)).astype(int)
        return int(x0), int(y0), int(x1), int(y1)

    @property
    def height(self) -> float:
        return float((np.linalg.norm(self.quad[3] - self.quad[0]) + np.linalg.norm(self.quad[2] - self.quad[1])) / 2)

    @property
    def width(self) -> float:
        return float((np.linalg.norm(self.quad[1] - self.quad[0]) + np.linalg.norm(self.quad[2] - self.quad[3])) / 2)

    def polygon(self) -> list[list[int]]:
        return [[int(round(x)), int(round(y))] for x, y in self.quad]


def _ordered_corners(points: np.ndarray) -> np.ndarray:
    """The minimum-area rectangle around ``points`` as (top-left, top-right, bottom-right, bottom-left)."""
    corners = cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32)))
    by_sum = corners[np.argsort(corners.sum(axis=1))]  # x + y: smallest is top-left, largest bottom-right
    rest = by_sum[1:3]
    top_right = rest[np.argmax(rest[:, 0] - rest[:, 1])]
    bottom_left = rest[np.argmin(rest[:, 0] - rest[:, 1])]
    return np.array([by_sum[0], top_right, by_sum[-1], bottom_left], dtype=np.float32)


class LineFinder:
    """The detector (loaded once per process) and the clean-up rules around it."""

    def __init__(self) -> None:
        from rapidocr import RapidOCR

        self._engine = RapidOCR(params={"Global.use_cls": False, "Global.use_rec": False, "Global.log_level": "warning"})
        self._lock = threading.Lock()  # the ONNX session is shared; one page at a time per process

    def detect(self, image: Image.Image) -> list[FoundLine]:
        """Raw detector output (page pixels)."""
        pixels = np.asarray(image.convert("RGB"))[:, :, ::-1]  # the detector expects BGR, like OpenCV
        with self._lock:
            output = self._engine(pixels, use_det=True, use_cls=False, use_rec=False)
        if output.boxes is None or len(output.boxes) == 0:
            return []
        return [FoundLine(np.asarray(box, dtype=np.float32), float(score)) for box, score in zip(output.boxes, output.scores)]

    def find(self, image: Image.Image) -> list[FoundLine]:
        """The page's text lines, cleaned up and in reading order."""
        grey = image.convert("L")
        smoothed = smoothed_if_bilevel(grey)
        found = self.detect(image if smoothed is grey else smoothed)
        if not found:
            return []
        median = float(np.median([line.height for line in found]))
        found = [line for line in found if line.height >= SPECK_HEIGHT * median]
        ink = np.asarray(smoothed)
        found = [part for line in found for part in _split_stacked(line, ink, median)]
        found = _join_fragments(found, median)
        order = reading_order([line.bbox for line in found])
        return [found[i] for i in order]


def smoothed_if_bilevel(grey: Image.Image) -> Image.Image:
    """``grey`` blurred slightly when it holds (almost) only black and white pixels, else itself."""
    pixels = np.asarray(grey)
    extremes = np.count_nonzero((pixels == 0) | (pixels == 255))
    if extremes < BILEVEL_SHARE * pixels.size:
        return grey
    return grey.filter(ImageFilter.GaussianBlur(BILEVEL_BLUR))


def crop_line(image: Image.Image, line: FoundLine, pad: float = LINE_CROP_PAD) -> Image.Image:
    """Cut ``line`` out of ``image`` as an upright rectangle, with a margin of ``pad`` line heights."""
    quad = line.quad
    height, width = line.height, line.width
    margin = pad * height
    # push each corner outwards along the line's own axes
    along = (quad[1] - quad[0]) / max(np.linalg.norm(quad[1] - quad[0]), 1e-6)
    across = (quad[3] - quad[0]) / max(np.linalg.norm(quad[3] - quad[0]), 1e-6)
    grown = np.array([
        quad[0] - along * margin - across * margin,
        quad[1] + along * margin - across * margin,
        quad[2] + along * margin + across * margin,
        quad[3] - along * margin + across * margin,
    ], dtype=np.float32)
    out_w, out_h = max(1, int(round(width + 2 * margin))), max(1, int(round(height + 2 * margin)))
    target = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(grown, target)
    pixels = cv2.warpPerspective(np.asarray(image.convert("RGB")), matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(pixels)


def _ink_runs(ink: np.ndarray, min_length: float) -> list[tuple[int, int]]:
    """Runs of rows with ink, at least ``min_length`` rows long."""
    inked = ink > max(0.1 * float(ink.max()), 2.0)
    runs, start = [], None
    for row, flag in enumerate(inked):
        if flag and start is None:
            start = row
        elif not flag and start is not None:
            runs.append((start, row))
            start = None
    if start is not None:
        runs.append((start, len(inked)))
    return [(a, b) for a, b in runs if b - a >= min_length]


def _split_stacked(line: FoundLine, grey: np.ndarray, median: float) -> list[FoundLine]:
    """Split a box holding several lines: at the blank rows between them, else at the lightest rows."""
    if line.height < SPLIT_HEIGHT * median:
        return [line]
    x0, y0, x1, y1 = line.bbox
    region = grey[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)]
    if region.size == 0:
        return [line]
    ink = (255.0 - region.astype(np.float32)).mean(axis=1)
    runs = _ink_runs(ink, 0.3 * median)
    if len(runs) >= 2:
        cuts = [(a_end + b_start) // 2 for (_, a_end), (b_start, _) in zip(runs, runs[1:])]
    else:  # lines touch: cut at the lightest row near each expected boundary
        parts = max(2, round(line.height / median))
        cuts = []
        for k in range(1, parts):
            centre = int(len(ink) * k / parts)
            window = max(1, int(len(ink) / parts / 3))
            lo, hi = max(1, centre - window), min(len(ink) - 1, centre + window)
            cuts.append(lo + int(np.argmin(ink[lo:hi])) if hi > lo else centre)
    fractions = [0.0] + [c / len(ink) for c in cuts] + [1.0]
    quad = line.quad
    pieces = []
    for a, b in zip(fractions, fractions[1:]):
        top_left, top_right = quad[0] + (quad[3] - quad[0]) * a, quad[1] + (quad[2] - quad[1]) * a
        bottom_left, bottom_right = quad[0] + (quad[3] - quad[0]) * b, quad[1] + (quad[2] - quad[1]) * b
        pieces.append(FoundLine(np.array([top_left, top_right, bottom_right, bottom_left], dtype=np.float32), line.score))
    return pieces


def _join_fragments(lines: list[FoundLine], median: float) -> list[FoundLine]:
    """Join boxes that sit on one row with less than ``JOIN_GAP`` line heights between them."""
    lines = sorted(lines, key=lambda line: line.bbox[0])
    joined: list[FoundLine] = []
    for line in lines:
        x0, y0, x1, y1 = line.bbox
        for index, other in enumerate(joined):
            ox0, oy0, ox1, oy1 = other.bbox
            overlap = min(y1, oy1) - max(y0, oy0)
            height = min(y1 - y0, oy1 - oy0)
            gap = x0 - ox1
            if overlap >= 0.6 * height and -0.5 * median <= gap <= JOIN_GAP * min(line.height, other.height):
                points = np.concatenate([other.quad, line.quad])
                score = (other.score * other.width + line.score * line.width) / max(other.width + line.width, 1e-6)
                joined[index] = FoundLine(_ordered_corners(points), score)
                break
        else:
            joined.append(line)
    return joined
