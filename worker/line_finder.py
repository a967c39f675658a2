"""Finding the text lines of a page, and cutting them out straight.

Detection is PP-OCR's DB text detector as shipped inside the ``rapidocr`` package (ONNX Runtime,
no download), run on the page scaled so its long side is ``DETECT_SIDE`` pixels (its boxes are
mapped back to the page): at full resolution it costs several seconds of CPU for an A4 page.

Before detection, ruled lines and box edges (long straight runs of ink) are painted out: they
join a label to its value and a value to the box around it. The detector's boxes are then
cleaned up for reading: specks are dropped, boxes nested in or overlapping another are merged,
fragments of one line (words the detector saw apart) are joined, a box is cut where a blank
wider than the text beside it is tall separates two texts on one row (a label and its value,
two fields), and a box holding two lines is split only at a blank band between them, never
through letters, whatever their size. Each line is cut from the page at its original
resolution with a perspective warp, which also straightens slightly rotated lines.

Bilevel pages (fax TIFFs, dithered scans) are smoothed to grey before detection only: the
detector was trained on grey images and loses a third of the lines of a dithered page, while
a one-pixel blur gives them all back. The lines are still cut from the page as it came.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image, ImageFilter

from inkwell.geometry import LINE_CROP_PAD
from inkwell.reading_order import reading_order
from worker.text_type import WEIGHTS, TextTypeClassifier, features

log = logging.getLogger(__name__)

DETECT_SIDE = 1280  # the detector sees the page scaled to this long side (see README, "Line finding")
SPECK_HEIGHT = 0.35  # of the median line height
JOIN_GAP = 1.2  # fragments closer than this many line heights on one row are one line
JOIN_HEIGHTS = 1.6  # ... when the taller is at most this many times the other's height
ROW_GAP = 1.5  # a blank this many text heights wide inside a box separates two texts on one row
CORE_MATCH = 0.25  # of the body's height: texts whose bodies' top and bottom are this close share one line ...
WORD_GAP = 2.5  # ... and a blank narrower than this many body heights between them is a word space
STACK_GAP = 0.08  # ... and the blank between two lines at least this share
STACK_RUN = 0.25  # an ink band this share of a box's height (or more) is a line of its own
FIT_MARGIN = 0.25  # of the text height, kept above and below a piece cut from a box (as the detector pads)
NEST_SHARE = 0.6  # two boxes sharing this much of the smaller one's area are one line
PIECE_SHARE = 0.6  # a box less than this share of a line's height tall, ...
PIECE_WIDTH = 1.5  # ... no wider than this many of its heights,
PIECE_GAP = 0.3  # ... within this many of its heights beside it and of its rows, is a piece of it
RULE_LENGTH = 1 / 12  # straight ink runs this share of the page width or longer are rules, not text
RULE_THICKNESS = 6  # pixels: a rule is at most this thick
BILEVEL_SHARE = 0.99  # a page with this share of pure black or white pixels is bilevel
BILEVEL_BLUR = 1.0  # pixels of Gaussian blur that turn dither back into grey for the detector


@dataclass(frozen=True)
class FoundLine:
    """A text line on the page: corner points (top-left, top-right, bottom-right, bottom-left) and score."""

    quad: np.ndarray  # 4 x 2 float32, page pixels
    score: float
    text_type: str | None = None  # "printed" or "handwritten", once classified
    text_type_confidence: float | None = None

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

    def __init__(self, detect_side: int = DETECT_SIDE) -> None:
        from rapidocr import RapidOCR

        params = {
            "Global.use_cls": False,
            "Global.use_rec": False,
            "Global.log_level": "warning",
            # scale the page down to detect_side (never up); boxes come back in page pixels
            "Det.limit_type": "max",
            "Det.limit_side_len": detect_side,
            # dilation joins a label to a value written close to it; fragments are joined below instead
            "Det.use_dilation": False,
        }
        self._detector = RapidOCR(params=params)._load_det_model()
        self._lock = threading.Lock()  # the ONNX session is shared; one page at a time per process
        self._classifier = TextTypeClassifier.bundled() if WEIGHTS.exists() else None

    def detect(self, grey: np.ndarray) -> list[FoundLine]:
        """Raw detector output on a greyscale page (page pixels)."""
        pixels = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)  # the detector expects 3 channels, like OpenCV
        with self._lock:
            output = self._detector(pixels)
        if output.boxes is None or len(output.boxes) == 0:
            return []
        return [
            FoundLine(np.asarray(box, dtype=np.float32), float(score))
            for box, score in zip(output.boxes, output.scores, strict=True)
        ]

    def find(self, image: Image.Image) -> list[FoundLine]:
        """The page's text lines, cleaned up and in reading order."""
        grey = np.asarray(smoothed_if_bilevel(image.convert("L")))
        page_ink = ink_mask(grey)
        rules = rule_mask(page_ink)
        found = self.detect(without_rules(grey, rules))
        if not found:
            return []
        ink = np.where(rules > 0, 0, page_ink)
        median = float(np.median([line.height for line in found]))
        found = [line for line in found if line.height >= SPECK_HEIGHT * median]
        found = _merge_nested(found)
        found = _join_fragments(found, median)
        found = [part for line in found for part in _split_row(line, ink)]
        found = [part for line in found for part in _split_stacked(line, ink)]
        found = [_fit(line, ink) for line in found]
        found = _merge_nested(found)
        found = _absorb_pieces(found, float(np.median([line.height for line in found])))
        found = self.classify(found, text_type_ink(page_ink, rules))
        order = reading_order(
            [line.bbox for line in found],
            [line.text_type for line in found],
            confidences=[line.text_type_confidence for line in found],
        )
        return [found[i] for i in order]

    def classify(self, lines: list[FoundLine], ink: np.ndarray) -> list[FoundLine]:
        """``lines`` with their text type (printed or handwritten) and its confidence."""
        if self._classifier is None or not lines:
            return lines
        regions = line_regions(lines, ink)
        batch = self._classifier.inputs(region_features(regions), regions)
        return [
            replace(line, text_type=kind.text_type, text_type_confidence=round(kind.confidence, 4))
            for line, kind in zip(lines, self._classifier.classify(batch), strict=True)
        ]


def line_regions(lines: list[FoundLine], ink: np.ndarray) -> list[np.ndarray]:
    """Each line's ink, warped upright: what the text-type features are measured on."""
    return [_region(line, ink)[0] for line in lines]


def region_features(regions: list[np.ndarray]) -> np.ndarray:
    """The text-type features of one page's lines from their upright ink (lines x features)."""
    heights = [_ink_height(region) for region in regions]
    median = float(np.median([h for h in heights if h] or [1]))
    return np.stack([features(region, median) for region in regions])


def ink_mask(grey: np.ndarray) -> np.ndarray:
    """Ink pixels (255) of a greyscale page, against its local background."""
    # 30 grey levels darker than the neighbourhood's mean: pen and print, not scanner noise
    # (a 3x3 median first: scanner noise and dust specks are not ink)
    return cv2.adaptiveThreshold(
        cv2.medianBlur(grey, 3), 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 31, 30
    )


def rule_mask(ink: np.ndarray) -> np.ndarray:
    """Ruled lines (solid, dashed or dotted, tilted up to a few degrees): long, thin ink runs (255), slightly grown.

    Gaps of dashes and dots are closed, and rows one or two pixels apart merged so that a tilted
    rule's staircase reads as one run; a run counts as a rule when it is at least ``RULE_LENGTH``
    of the page wide and on average at most ``RULE_THICKNESS`` thick (a closed-up row of text is
    part of a thicker block, or shorter).
    """
    length = max(120, int(ink.shape[1] * RULE_LENGTH))
    bridged = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 3)))
    candidates = cv2.morphologyEx(bridged, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (31, 1)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
    widths = stats[:, cv2.CC_STAT_WIDTH]
    thickness = stats[:, cv2.CC_STAT_AREA] / np.maximum(widths, 1)
    rules = np.flatnonzero((widths >= length) & (thickness <= RULE_THICKNESS))
    rules = rules[rules > 0]
    if rules.size == 0:
        return np.zeros_like(ink)
    found = np.where(np.isin(labels, rules), 255, 0).astype(np.uint8)
    # writing that sits on a rule joins its component: keep only the rule's thin part
    thick = cv2.morphologyEx(found, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, RULE_THICKNESS + 2)))
    found &= ~cv2.dilate(thick, np.ones((5, 5), np.uint8))
    found |= _box_edges(ink, cv2.dilate(found, np.ones((7, 7), np.uint8)))
    return cv2.dilate(found, np.ones((3, 3), np.uint8)) & cv2.dilate(ink, np.ones((3, 3), np.uint8))


def _box_edges(ink: np.ndarray, rules: np.ndarray) -> np.ndarray:
    """The vertical sides of boxes: thin upright ink runs that meet a ruled line at both ends."""
    bridged = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 9)))
    candidates = cv2.morphologyEx(bridged, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 21)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
    heights = stats[:, cv2.CC_STAT_HEIGHT]
    thickness = stats[:, cv2.CC_STAT_AREA] / np.maximum(heights, 1)
    edges = []
    for index in np.flatnonzero((heights >= 30) & (thickness <= RULE_THICKNESS)):
        if index == 0:
            continue
        x, y, w, h = stats[index, :4]
        near = lambda top, x=x, w=w: rules[max(0, top - 6) : top + 7, max(0, x - 6) : x + w + 6].any()  # noqa: E731
        if near(y) and near(y + h - 1):  # a box side joins a top and a bottom edge; a stroke on a rule does not
            edges.append(index)
    return np.where(np.isin(labels, edges), 255, 0).astype(np.uint8) if edges else np.zeros_like(ink)


def text_type_ink(ink: np.ndarray, rules: np.ndarray) -> np.ndarray:
    """The ink the text-type features are measured on: the page's ``ink`` less its ``rules``, but
    with the strokes that cross a rule kept whole.

    Painting a rule out cuts every descender written across it (the "J" of "John", a "y", a
    "g") into two pieces a rule's thickness apart: the value then has more, shorter pieces and
    fewer long strokes than it was written with, which is how type looks. Where ink runs into
    the rule from above and on out of it below, the rule's pixels are the stroke's and are kept.
    """
    if not rules.any():
        return ink
    off_rules = np.where(rules > 0, 0, ink)
    reach = RULE_THICKNESS + 2  # a painted-out rule is at most this thick
    above = np.zeros((2 * reach + 1, 1), np.uint8)
    above[: reach + 1] = 1  # the anchor is the middle row: these rows look upwards
    below = above[::-1].copy()
    crossing = (rules > 0) & (ink > 0) & (cv2.dilate(off_rules, above) > 0) & (cv2.dilate(off_rules, below) > 0)
    return np.where(crossing, ink, off_rules)


def without_rules(grey: np.ndarray, rules: np.ndarray) -> np.ndarray:
    """The page with its rules painted in the paper's tone (for the detector only)."""
    if not rules.any():
        return grey
    cleaned = grey.copy()
    cleaned[rules > 0] = int(np.median(grey[::8, ::8]))
    return cleaned


def smoothed_if_bilevel(grey: Image.Image) -> Image.Image:
    """``grey`` blurred slightly when it holds (almost) only black and white pixels, else itself."""
    pixels = np.asarray(grey)
    extremes = np.count_nonzero((pixels == 0) | (pixels == 255))
    if extremes < BILEVEL_SHARE * pixels.size:
        return grey
    return grey.filter(ImageFilter.GaussianBlur(BILEVEL_BLUR))


def page_pixels(image: Image.Image) -> np.ndarray:
    """The page's pixels to cut lines from: 2-D (grey) when its three channels are equal, else RGB.

    A grey page (most scans, every fax) cut as grey gives the same crops with a third of the
    bytes to encode and store, and the model reads them as the same RGB.
    """
    pixels = np.asarray(image.convert("RGB"))
    red = pixels[..., 0]
    if np.array_equal(red, pixels[..., 1]) and np.array_equal(red, pixels[..., 2]):
        return np.ascontiguousarray(red)
    return pixels


def crop_line(image: Image.Image | np.ndarray, line: FoundLine, pad: float = LINE_CROP_PAD) -> Image.Image:
    """Cut ``line`` out of ``image`` as an upright rectangle, with a margin of ``pad`` line heights.

    ``image`` may be the page's pixels from ``page_pixels`` (converted once for all its lines,
    not once per line): the crop is then grey when they are.
    """
    pixels = image if isinstance(image, np.ndarray) else np.asarray(image.convert("RGB"))
    quad = line.quad
    height, width = line.height, line.width
    margin = pad * height
    # push each corner outwards along the line's own axes
    along = (quad[1] - quad[0]) / max(np.linalg.norm(quad[1] - quad[0]), 1e-6)
    across = (quad[3] - quad[0]) / max(np.linalg.norm(quad[3] - quad[0]), 1e-6)
    grown = np.array(
        [
            quad[0] - along * margin - across * margin,
            quad[1] + along * margin - across * margin,
            quad[2] + along * margin + across * margin,
            quad[3] - along * margin + across * margin,
        ],
        dtype=np.float32,
    )
    out_w, out_h = max(1, int(round(width + 2 * margin))), max(1, int(round(height + 2 * margin)))
    target = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(grown, target)
    cropped = cv2.warpPerspective(
        pixels, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return Image.fromarray(cropped)


VERTICAL_3 = np.ones((3, 1), np.uint8)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in ``flags``."""
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=False))


def _region(line: FoundLine, ink: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The ink inside the line's quad, warped upright (rows and columns are fractions of its height and width)."""
    width, height = max(1, int(round(line.width))), max(1, int(round(line.height)))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(line.quad.astype(np.float32), target)
    upright = cv2.warpPerspective(
        ink, matrix, (width, height), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return upright, 0, 0


def _piece(line: FoundLine, a: float, b: float, along: bool) -> FoundLine:
    """The part of ``line`` between fractions ``a`` and ``b`` of its width (``along``) or height."""
    q = line.quad
    if along:
        corners = [
            q[0] + (q[1] - q[0]) * a,
            q[0] + (q[1] - q[0]) * b,
            q[3] + (q[2] - q[3]) * b,
            q[3] + (q[2] - q[3]) * a,
        ]
    else:
        corners = [
            q[0] + (q[3] - q[0]) * a,
            q[1] + (q[2] - q[1]) * a,
            q[1] + (q[2] - q[1]) * b,
            q[0] + (q[3] - q[0]) * b,
        ]
    return FoundLine(np.array(corners, dtype=np.float32), line.score)


def _ink_height(region: np.ndarray) -> int:
    rows = np.flatnonzero(region.any(axis=1))
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def _ink_width(region: np.ndarray) -> int:
    columns = np.flatnonzero(region.any(axis=0))
    return int(columns[-1] - columns[0] + 1) if columns.size else 0


def _split_row(line: FoundLine, ink: np.ndarray) -> list[FoundLine]:
    """Cut a box where a blank wider than ``ROW_GAP`` times the text height beside it runs top to bottom.

    The text height on each side is that of all the ink on that side, so a word of small letters
    next to a tall one is not mistaken for a second text; a label and the value written after it,
    or two fields on one row, are.
    """
    region, _, _ = _region(line, ink)
    if region.shape[1] < 4 or region.shape[0] < 2:
        return [line]
    # strokes at most two pixels tall (what is left of a dotted or dashed rule, specks) join nothing
    region = cv2.morphologyEx(region, cv2.MORPH_OPEN, VERTICAL_3)
    columns = np.count_nonzero(region, axis=0) >= max(2, 0.12 * region.shape[0])
    inked = np.flatnonzero(columns)
    if inked.size == 0:
        return [line]
    cuts = []
    for start, end in _runs(~columns):
        if start <= inked[0] or end > inked[-1]:
            continue  # the margins, not a gap between texts
        left, right = region[:, cuts[-1] if cuts else 0 : start], region[:, end:]
        left_height, right_height = _ink_height(left), _ink_height(right)
        height = min(left_height, right_height)
        # a side narrower than it is tall is a mark (a colon, a tick), not a text of its own
        wide = _ink_width(left) >= left_height and _ink_width(right) >= right_height
        if height and wide and end - start >= ROW_GAP * height and not _word_space(left, right, end - start):
            cuts.append((start + end) // 2)
    if not cuts:
        return [line]
    width = region.shape[1]
    fractions = [0.0] + [c / width for c in cuts] + [1.0]
    return [_fit_height(_piece(line, a, b, along=True), ink) for a, b in itertools.pairwise(fractions)]


def _core_band(region: np.ndarray) -> tuple[int, int] | None:
    """The rows of a text's body, from its x-height line to its baseline: where the ink per row
    rises most steeply (going down) and where it falls most steeply. Ascenders, descenders and
    capitals' tops hold few pixels per row, so every word of one printed line has the same band,
    whatever letters it holds."""
    counts = np.count_nonzero(region, axis=1).astype(np.float32)
    if counts.size < 4 or counts.max() == 0:
        return None
    steps = np.diff(np.convolve(counts, (0.25, 0.5, 0.25), mode="same"))
    top, bottom = int(np.argmax(steps)) + 1, int(np.argmin(steps)) + 1
    return (top, bottom) if bottom > top else None


def _word_space(left: np.ndarray, right: np.ndarray, gap: int) -> bool:
    """Is a blank of ``gap`` columns a space between words of one line, not the gap between two texts?

    The height rule alone takes the space after a word of small letters ("First name:", "no.")
    for a gap between texts: such a word is only x-height tall. Words of one line share their
    body band (x-height line and baseline, within ``CORE_MATCH`` of its height), whatever letters
    they hold, and their spaces are under two body heights even in a monospaced face (about
    0.6 of the type size, or 1.1 bodies, plus the letters' side bearings); a value follows its
    label by more than three of the label's (forms leave about two type sizes). A label and a
    value whose bodies happen to line up are still cut there.
    """
    a, b = _core_band(left), _core_band(right)
    if a is None or b is None:
        return False
    body = max(a[1] - a[0], b[1] - b[0])
    same_band = abs(a[0] - b[0]) <= CORE_MATCH * body and abs(a[1] - b[1]) <= CORE_MATCH * body
    # measured by the smaller body: a value written larger than its label, its body around the
    # label's, is still as far from it as forms leave
    return same_band and gap < WORD_GAP * min(a[1] - a[0], b[1] - b[0])


def _fit_height(line: FoundLine, ink: np.ndarray) -> FoundLine:
    """``line`` (a piece cut from a taller box) shrunk to the rows its own ink spans, with the detector's margin."""
    region, _, _ = _region(line, ink)
    rows = np.flatnonzero(np.count_nonzero(region, axis=1) >= 2)
    if rows.size == 0 or region.shape[0] == 0:
        return line
    margin = FIT_MARGIN * (rows[-1] - rows[0] + 1)
    top = max(0.0, (rows[0] - margin) / region.shape[0])
    bottom = min(1.0, (rows[-1] + 1 + margin) / region.shape[0])
    return _piece(line, top, bottom, along=False)


def _fit(line: FoundLine, ink: np.ndarray) -> FoundLine:
    """``line`` fitted to its ink, with a margin of ``FIT_MARGIN`` text heights all round (never grown).

    The detector pads its boxes by an amount that depends on their size, so small labels came
    out twice as tall as their text; fitted boxes are comparable from line to line.
    """
    line = _fit_height(line, ink)
    region, _, _ = _region(line, ink)
    columns = np.flatnonzero(np.count_nonzero(region, axis=0) >= max(2, 0.12 * region.shape[0]))
    if columns.size == 0:
        return line
    margin = FIT_MARGIN * line.height / (1 + 2 * FIT_MARGIN)
    left = max(0.0, (columns[0] - margin) / region.shape[1])
    right = min(1.0, (columns[-1] + 1 + margin) / region.shape[1])
    return _piece(line, left, right, along=True)


def _split_stacked(line: FoundLine, ink: np.ndarray) -> list[FoundLine]:
    """Split a box holding several lines at the blank bands between them (never through letters).

    A band of ink counts as a line when it is at least ``STACK_RUN`` of the box's height: the dot
    of an i or a stray mark above tall handwriting does not split it, and letters that touch
    from one line to the next are left as one box rather than cut.
    """
    region, _, _ = _region(line, ink)
    if region.size == 0:
        return [line]
    rows = np.count_nonzero(region, axis=1) >= 2
    runs = [(a, b) for a, b in _runs(rows) if b - a >= STACK_RUN * len(rows)]
    # a band as thin as a painted-out rule is where the rule crossed the writing, not between lines
    least = max(RULE_THICKNESS + 2, STACK_GAP * len(rows))
    cuts = [(a_end + b_start) // 2 for (_, a_end), (b_start, _) in itertools.pairwise(runs) if b_start - a_end >= least]
    if not cuts:
        return [line]
    fractions = [0.0] + [c / len(rows) for c in cuts] + [1.0]
    return [_piece(line, a, b, along=False) for a, b in itertools.pairwise(fractions)]


def _joined(first: FoundLine, second: FoundLine, score: float) -> FoundLine:
    """One line around both lines' corners."""
    return FoundLine(_ordered_corners(np.concatenate([first.quad, second.quad])), score)


def _merge_nested(lines: list[FoundLine]) -> list[FoundLine]:
    """Merge boxes that share ``NEST_SHARE`` of the smaller one's area (nested or duplicated detections)."""
    merged = list(lines)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i].bbox, merged[j].bbox
                inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
                smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
                if smaller > 0 and inter >= NEST_SHARE * smaller:
                    merged[i] = _joined(merged[i], merged[j], max(merged[i].score, merged[j].score))
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return merged


def _absorb_pieces(lines: list[FoundLine], median: float) -> list[FoundLine]:
    """Join each small piece to the line it touches: a box less than ``PIECE_SHARE`` of a line's
    height and of the page's ``median`` line height tall (no label, however short, is that
    small) and at most ``PIECE_WIDTH`` of the line's height wide, within its rows and ``PIECE_GAP`` of its
    height beside it, is a bit of its writing (a lead-in stroke, an apostrophe, a letter the
    detector saw apart), not a text: on its own it was a line of nothing between a label and its
    value, and the label was paired with it."""
    lines = list(lines)
    changed = True
    while changed:
        changed = False
        for i in sorted(range(len(lines)), key=lambda index: lines[index].height):
            piece = lines[i].bbox
            height, width = piece[3] - piece[1], piece[2] - piece[0]
            best, best_gap = None, None
            for j, other in enumerate(lines):
                if j == i:
                    continue
                x0, y0, x1, y1 = other.bbox
                tall = y1 - y0
                gap = max(x0 - piece[2], piece[0] - x1, 0)
                if (
                    height < PIECE_SHARE * min(tall, median)
                    and width <= PIECE_WIDTH * tall
                    and piece[1] >= y0 - PIECE_GAP * tall
                    and piece[3] <= y1 + PIECE_GAP * tall
                    and gap <= PIECE_GAP * tall
                    and (best_gap is None or gap < best_gap)
                ):
                    best, best_gap = j, gap
            if best is not None:
                lines[best] = _joined(lines[best], lines[i], lines[best].score)
                del lines[i]
                changed = True
                break
    return lines


def _join_fragments(lines: list[FoundLine], median: float) -> list[FoundLine]:
    """Join boxes of similar height that sit on one row with less than ``JOIN_GAP`` line heights between them.

    A label and the (much larger or smaller) value written after it are not joined.
    """
    lines = sorted(lines, key=lambda line: line.bbox[0])
    joined: list[FoundLine] = []
    for line in lines:
        x0, y0, x1, y1 = line.bbox
        for index, other in enumerate(joined):
            ox0, oy0, ox1, oy1 = other.bbox
            overlap = min(y1, oy1) - max(y0, oy0)
            height = min(y1 - y0, oy1 - oy0)
            gap = x0 - ox1
            similar = max(line.height, other.height) <= JOIN_HEIGHTS * min(line.height, other.height)
            if (
                similar
                and overlap >= 0.6 * height
                and -0.5 * median <= gap <= JOIN_GAP * min(line.height, other.height)
            ):
                score = (other.score * other.width + line.score * line.width) / max(other.width + line.width, 1e-6)
                joined[index] = _joined(other, line, score)
                break
        else:
            joined.append(line)
    return joined
