"""Finding lines on pages: detection recall and reading order on synthetic forms, the clean-up rules."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from inkwell.fields import pair_fields
from inkwell.reading_order import reading_order
from tests.documents import image_tiff
from tests.forms import Form, handwriting_fonts, make_form
from tests.tiny_models import render_text_line
from worker.line_finder import (
    FoundLine,
    LineFinder,
    _absorb_pieces,
    _join_fragments,
    _split_row,
    _split_stacked,
    crop_line,
    ink_mask,
    page_pixels,
    smoothed_if_bilevel,
)


@pytest.fixture(scope="module")
def finder() -> LineFinder:
    return LineFinder()


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def match(form: Form, found: list[FoundLine]) -> list[int | None]:
    """For each expected line (in reading order), the index of the found line covering it, if any."""
    matched = []
    for line in form.lines:
        expected = form.page_bbox(line)
        scores = [_iou(expected, f.bbox) for f in found]
        best = int(np.argmax(scores)) if scores else None
        matched.append(best if best is not None and scores[best] >= 0.3 else None)
    return matched


def test_forms_lines_are_found_and_ordered(finder: LineFinder) -> None:
    fonts = handwriting_fonts()
    recalls, orders = [], []
    for seed in range(5):
        form = make_form(100 + seed, fonts)
        found = finder.find(form.image)
        matched = match(form, found)
        hits = [m for m in matched if m is not None]
        recalls.append(len(hits) / len(form.lines))
        orders.append(hits == sorted(hits) and len(set(hits)) == len(hits))
        assert len(found) <= len(form.lines) + 1, "no spurious lines"
    print(
        f"\nline detection on 5 synthetic forms: recall {np.mean(recalls):.3f} (min {min(recalls):.3f}), reading order "
        f"right on {sum(orders)}/5"
    )
    assert min(recalls) >= 0.95
    assert all(orders)


def test_blank_and_black_pages_have_no_lines(finder: LineFinder) -> None:
    assert finder.find(Image.new("RGB", (1240, 1754), "white")) == []
    assert len(finder.find(Image.new("RGB", (1240, 1754), "black"))) <= 1


def test_two_columns_are_read_column_by_column() -> None:
    # rows of (label, value) on the left and on the right, 30 px high lines, 300 px gutter
    left = [(100, 100 + 60 * r, 400, 130 + 60 * r) for r in range(4)]
    right = [(700, 100 + 60 * r, 1000, 130 + 60 * r) for r in range(4)]
    title = [(100, 20, 1000, 60)]
    order = reading_order(title + [box for pair in zip(left, right, strict=True) for box in pair])
    assert order == [0, 1, 3, 5, 7, 2, 4, 6, 8]


def test_label_and_value_on_one_row_stay_together() -> None:
    rows = [[(100, 100 + 60 * r, 250, 130 + 60 * r), (330, 95 + 60 * r, 700, 135 + 60 * r)] for r in range(5)]
    flat = [box for row in rows for box in row]
    shuffled = flat[::-1]
    assert [shuffled[i] for i in reading_order(shuffled)] == flat


def _quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def test_fragments_of_one_line_are_joined_but_columns_are_not() -> None:
    words = [
        FoundLine(_quad(100, 100, 180, 130), 0.9),
        FoundLine(_quad(195, 102, 300, 131), 0.8),
        FoundLine(_quad(600, 100, 700, 130), 0.9),
    ]
    joined = _join_fragments(words, median=30)
    assert len(joined) == 2
    assert abs(joined[0].bbox[0] - 100) <= 1 and abs(joined[0].bbox[2] - 300) <= 1


def test_a_small_piece_beside_a_line_joins_it_and_a_small_value_does_not() -> None:
    """Generated training form 5000: a 13 x 11 px piece of the "L" of "Lucy Brown", found on its
    own just left of it, was a line of nothing that its label "Nationality" was paired with."""
    label = FoundLine(_quad(142, 1154, 334, 1205), 0.9)
    piece = FoundLine(_quad(388, 1185, 401, 1196), 0.6)
    value = FoundLine(_quad(399, 1165, 524, 1212), 0.9)
    joined = _absorb_pieces([label, piece, value], median=45)
    assert len(joined) == 2 and joined[0].bbox == label.bbox
    assert np.allclose(joined[1].bbox, (388, 1165, 524, 1212), atol=1.5)  # the piece and the value
    # a small value written the usual gap after its label stays a line of its own
    small_value = FoundLine(_quad(400, 1170, 440, 1190), 0.9)
    assert len(_absorb_pieces([label, small_value], median=45)) == 2
    # nor does a short label beside a tall value
    tall = FoundLine(_quad(300, 1100, 700, 1260), 0.9)
    assert len(_absorb_pieces([FoundLine(_quad(200, 1160, 260, 1190), 0.9), tall], median=40)) == 2


def test_a_box_over_two_lines_is_split_between_them() -> None:
    page = Image.new("L", (600, 200), 255)
    draw = ImageDraw.Draw(page)
    draw.rectangle((100, 40, 500, 70), fill=0)
    draw.rectangle((100, 110, 500, 140), fill=0)
    parts = _split_stacked(FoundLine(_quad(95, 35, 505, 145), 0.9), ink_mask(np.asarray(page)))
    assert len(parts) == 2
    (_, _, _, bottom0), (_, top1, _, _) = parts[0].bbox, parts[1].bbox
    assert bottom0 <= 110 and top1 >= 70


def _label_face(face: str, size: int):
    """One of the form set's label faces (a system font file name) at ``size``."""
    from PIL import ImageFont

    from tests.form_set import label_fonts

    return ImageFont.truetype(str(next(path for path in label_fonts() if path.name == face)), size)


def _typeset_row(face: str, size: int, texts: list[tuple[int, str]]) -> tuple[FoundLine, np.ndarray]:
    """A box around ``texts`` (x, text) set on one baseline in a system face, and the page's ink."""
    font = _label_face(face, size)
    page = Image.new("L", (1200, 200), 255)
    draw = ImageDraw.Draw(page)
    boxes = []
    for x, text in texts:
        draw.text((x, 60), text, font=font, fill=20)
        boxes.append(draw.textbbox((x, 60), text, font=font))
    x0, y0 = min(b[0] for b in boxes) - 8, min(b[1] for b in boxes) - 10
    x1, y1 = max(b[2] for b in boxes) + 8, max(b[3] for b in boxes) + 10
    return FoundLine(_quad(x0, y0, x1, y1), 0.9), ink_mask(np.asarray(page))


@pytest.mark.parametrize("face", ["DejaVuSansMono.ttf", "LiberationMono-Regular.ttf"])
@pytest.mark.parametrize("text", ["Account no.:", "First name:"])
@pytest.mark.parametrize("size", [24, 30])
def test_a_word_space_before_a_word_of_small_letters_does_not_cut_a_label(face: str, text: str, size: int) -> None:
    """A word like "name:" is only x-height tall, and a monospaced space is wide: the blank before it was taken
    for the gap between a label and its value (1.5 times the shorter side's height), and the
    label came back as two lines."""
    line, ink = _typeset_row(face, size, [(50, text)])
    assert len(_split_row(line, ink)) == 1


@pytest.mark.parametrize("face", ["DejaVuSansMono.ttf", "LiberationSans-Regular.ttf"])
def test_a_text_after_a_label_is_cut_off_even_in_the_labels_face(face: str) -> None:
    """Two texts of one face on one baseline (their bodies match) with the gap forms leave after a
    label (1.8 type sizes) are still two lines."""
    size = 30
    end = 50 + _label_face(face, size).getlength("Account no.:")
    line, ink = _typeset_row(face, size, [(50, "Account no.:"), (int(end + 1.8 * size), "Peter Walsh")])
    assert len(_split_row(line, ink)) == 2


def test_crops_are_straightened() -> None:
    line = render_text_line("Paris 75001", height=40)
    page = Image.new("RGB", (600, 300), "white")
    page.paste(line, (150, 120))
    angle = 4.0
    rotated = page.rotate(angle, Image.Resampling.BICUBIC, fillcolor="white")
    centre = np.array([300, 150])
    theta = np.deg2rad(angle)
    rotation = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    corners = _quad(150, 120, 150 + line.width, 160) - centre
    quad = (corners @ rotation.T + centre).astype(np.float32)
    crop = crop_line(rotated, FoundLine(quad, 1.0), pad=0.0)
    assert abs(crop.width - line.width) <= 2 and abs(crop.height - 40) <= 2
    difference = np.abs(
        np.asarray(ImageOps.grayscale(crop.resize(line.size)), dtype=float)
        - np.asarray(ImageOps.grayscale(line), dtype=float)
    )
    assert difference.mean() < 20


def test_a_grey_page_is_cut_into_grey_crops_with_the_same_pixels() -> None:
    """A grey scan (as RGB) gives grey crops, a third of the bytes to store; a colour page stays colour."""
    line = render_text_line("Paris 75001", height=40)
    page = Image.new("RGB", (600, 300), "white")
    page.paste(line, (150, 120))
    found = FoundLine(_quad(150, 120, 150 + line.width, 160), 1.0)
    grey = crop_line(page_pixels(page), found)
    assert grey.mode == "L"
    assert np.array_equal(np.asarray(grey.convert("RGB")), np.asarray(crop_line(page, found)))
    page.putpixel((160, 130), (200, 30, 30))  # one red pixel makes it a colour page
    assert page_pixels(page).ndim == 3 and crop_line(page_pixels(page), found).mode == "RGB"


def test_a_dithered_fax_page_loses_no_lines(finder: LineFinder) -> None:
    """A 1-bit (dithered) page: the detector alone misses a third of its lines."""
    form = make_form(23, handwriting_fonts())
    fax = Image.open(io.BytesIO(image_tiff([form.image], mode="1", compression="group4"))).convert("RGB")
    grey = fax.convert("L")
    assert smoothed_if_bilevel(grey) is not grey
    missed = [line.text for line, hit in zip(form.lines, match(form, finder.find(fax)), strict=True) if hit is None]
    assert missed == []


# -- forms that used to break the line finder (the generated set: tests/form_set.py) ----------------


def _tall_value_form(size: int) -> tuple[Image.Image, list, int]:
    """Small printed labels with small values, and one value written ``size`` px high."""
    from PIL import ImageFont

    from tests.form_set import PAGE_SIZE, _Page, eval_hands, label_fonts

    page = _Page()
    label_font = ImageFont.truetype(str(label_fonts()[0]), 26)
    hands = eval_hands()
    small = ImageFont.truetype(str(hands[0].path), 34)
    tall = ImageFont.truetype(str(hands[1].path), size)
    y, tall_index = 120, -1
    for row, (label, value) in enumerate(
        (("Name:", "Ahmed Khan"), ("Town:", "York"), ("Ref:", "PK 45120"), ("Date:", "2 June"))
    ):
        y += size if row == 1 else 0  # room above the tall value
        page.write((100, y), label, label_font, "printed")
        font = tall if row == 1 else small
        index = page.write((360, y - (int(size * 0.55) if row == 1 else 0)), value, font, "handwritten")
        tall_index = index if row == 1 else tall_index
        y += (size // 2 + 80) if row == 1 else 90
    assert page.image.size == PAGE_SIZE
    return page.image.convert("RGB"), page.lines, tall_index


def test_tall_handwriting_among_small_labels_stays_one_line(finder: LineFinder) -> None:
    """A 150 px value on a page of 26 px labels: the old rule cut it into strips (taller than 1.75 median heights)."""
    from benchmarks.form_lines import match_lines

    image, lines, tall = _tall_value_form(150)
    found = finder.find(image)
    matched = match_lines([line.bbox for line in lines], [line.bbox for line in found])
    assert len(matched) == len(lines) == len(found), [line.bbox for line in found]
    x0, y0, x1, y1 = lines[tall].bbox
    across = [
        line
        for line in found
        if min(y1, line.bbox[3]) - max(y0, line.bbox[1]) > 0.25 * (y1 - y0) and line.bbox[0] < x1 and line.bbox[2] > x0
    ]
    assert len(across) == 1, "one line, not strips"


def test_generated_forms_meet_the_line_finding_figures(finder: LineFinder) -> None:
    """A sample of the evaluation set (the whole set: python -m benchmarks.form_lines)."""
    from benchmarks.form_lines import Tally, score_form
    from tests.form_set import EVAL_SEEDS, eval_hands, label_fonts, make_eval_form

    hands, printed = eval_hands(), label_fonts()
    tally = Tally()
    for seed in EVAL_SEEDS[:6]:
        form = make_eval_form(seed, hands, printed)
        found = finder.find(form.image)
        kinds = [line.text_type for line in found]
        confidences = [line.text_type_confidence for line in found]
        fields = [(pair.key, pair.values) for pair in pair_fields([line.bbox for line in found], kinds, confidences)]
        score_form(form, [line.quad for line in found], tally, kinds, fields)
    print(
        f"\n6 generated forms: {tally.line()}; text type right {tally.typed_right}/{tally.typed}, fields "
        f"{tally.fields_right}/{tally.fields}"
    )
    assert tally.matched / tally.truth >= 0.97 and tally.matched / tally.found >= 0.97
    assert tally.duplicates <= 1
    assert tally.typed_right / tally.typed >= 0.9  # measured 0.957 on the whole set
    assert tally.fields_right / tally.fields >= 0.8  # measured 0.889 on the whole set
