"""Pairing printed labels with handwritten values, and reading order that keeps them together."""

from __future__ import annotations

from inkwell.fields import FieldPair, label_text, pair_fields
from inkwell.reading_order import reading_order

P, H = "printed", "handwritten"


def test_a_value_to_the_right_of_its_label() -> None:
    boxes = [(100, 100, 250, 130), (300, 80, 700, 150)]  # a small label and a large value on its row
    assert pair_fields(boxes, [P, H]) == [FieldPair(0, [1])]


def test_a_value_below_its_label_in_a_box() -> None:
    boxes = [(100, 100, 260, 128), (110, 150, 600, 260)]
    assert pair_fields(boxes, [P, H]) == [FieldPair(0, [1])]


def test_a_tall_value_below_its_label_on_a_tilted_page() -> None:
    # generated form 1027: a 150 px value in the box under "Doctor:", the page turned by 2-3
    # degrees; its upright box's top (1345) is above the label's middle (1347), and it was left unpaired
    boxes = [(161, 1332, 257, 1362), (175, 1345, 532, 1555)]
    assert pair_fields(boxes, [P, H]) == [FieldPair(0, [1])]


def test_two_fields_on_one_row_stay_apart() -> None:
    boxes = [(100, 100, 220, 130), (260, 95, 500, 140), (800, 100, 950, 130), (990, 90, 1300, 145)]
    assert pair_fields(boxes, [P, H, P, H]) == [FieldPair(0, [1]), FieldPair(2, [3])]


def test_a_value_on_its_labels_row_is_not_taken_by_the_label_above() -> None:
    boxes = [(100, 100, 220, 130), (100, 160, 230, 190), (300, 150, 600, 200)]
    # "Name:" above "Town:" whose value is on Town's row: the value is Town's, Name stays empty
    assert pair_fields(boxes, [P, P, H]) == [FieldPair(1, [2])]


def test_printed_lines_alone_and_handwriting_alone_make_no_fields() -> None:
    boxes = [(100, 100, 900, 150), (100, 300, 900, 350)]
    assert pair_fields(boxes, [P, P]) == []
    assert pair_fields(boxes, [H, H]) == []
    assert pair_fields(boxes, [None, None]) == []  # lines stored before text types existed


def test_a_value_written_over_two_lines_belongs_to_one_label() -> None:
    boxes = [(100, 100, 260, 128), (110, 150, 600, 200), (112, 215, 580, 262)]
    assert pair_fields(boxes, [P, H, H]) == [FieldPair(0, [1, 2])]


def test_reading_order_puts_each_value_right_after_its_label() -> None:
    # labels on the left, values far to the right: the gutter between them reads as two columns,
    # which read three labels and then three values (the defect); with text types, pairs stay together
    labels = [(100, 100 + 80 * r, 250, 130 + 80 * r) for r in range(3)]
    values = [(800, 95 + 80 * r, 1100, 135 + 80 * r) for r in range(3)]
    extents = [box for pair in zip(labels, values, strict=True) for box in pair]
    assert reading_order(extents) == [0, 2, 4, 1, 3, 5]
    assert reading_order(extents, [P, H] * 3) == [0, 1, 2, 3, 4, 5]


def test_label_text_drops_the_colon() -> None:
    assert label_text(" Date of birth : ") == "Date of birth"


def test_a_value_taken_for_print_with_little_confidence_is_still_its_labels() -> None:
    """A value in a print-like hand typed "printed" at 0.6: the label sure of being print, the
    value on its row, nothing between: where it stands makes it the value (it had no field)."""
    boxes = [(100, 100, 250, 130), (330, 95, 560, 140), (100, 200, 250, 230), (100, 250, 600, 300)]
    kinds, sure = [P, P, P, H], [0.99, 0.6, 0.98, 0.97]
    assert pair_fields(boxes, kinds) == [FieldPair(2, [3])]  # by the types alone
    assert pair_fields(boxes, kinds, sure) == [FieldPair(0, [1]), FieldPair(2, [3])]
    assert reading_order(boxes, kinds, confidences=sure) == [0, 1, 2, 3]


def test_a_label_taken_for_handwriting_with_little_confidence_still_labels_its_value() -> None:
    boxes = [(100, 100, 250, 130), (330, 95, 560, 140)]
    assert pair_fields(boxes, [H, H], [0.7, 0.99]) == [FieldPair(0, [1])]


def test_sure_types_and_two_unsure_lines_are_not_paired_by_place_alone() -> None:
    boxes = [(100, 100, 250, 130), (330, 95, 560, 140)]
    assert pair_fields(boxes, [P, P], [0.99, 0.95]) == []  # a title beside a label, say
    assert pair_fields(boxes, [P, P], [0.6, 0.6]) == []
    assert pair_fields(boxes, [P, P], [None, 0.6]) == [FieldPair(0, [1])]  # None: no confidence measured, taken as sure
