"""Printed or handwritten (worker/text_type.py): the ink its features are measured on."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw

from worker.line_finder import ink_mask, rule_mask, text_type_ink


def _page_with_a_rule() -> Image.Image:
    """A ruled line with a stroke written across it (a descender) and one resting on it."""
    page = Image.new("L", (900, 200), 250)
    draw = ImageDraw.Draw(page)
    draw.line((50, 100, 850, 100), fill=120, width=2)  # the rule
    draw.line((300, 60, 300, 140), fill=20, width=4)  # crosses it
    draw.line((500, 60, 500, 99), fill=20, width=4)  # ends on it
    return page


def test_a_stroke_across_a_painted_out_rule_is_kept_whole() -> None:
    """The rule is painted out of the ink the features see, but a descender across it was cut in
    two, and a value on a rule looked like type: more, shorter pieces."""
    ink = ink_mask(np.asarray(_page_with_a_rule()))
    rules = rule_mask(ink)
    assert rules[100, 100:250].all(), "the rule is found"
    painted_out = np.where(rules > 0, 0, ink)
    count, _ = cv2.connectedComponents((painted_out[40:160, 280:320] > 0).astype(np.uint8))
    assert count - 1 == 2, "painting the rule out cuts the stroke in two"
    kept = text_type_ink(ink, rules)
    count, _ = cv2.connectedComponents((kept[40:160, 280:320] > 0).astype(np.uint8))
    assert count - 1 == 1, "the crossing stroke is one piece"
    assert not kept[95:106, 100:250].any() and not kept[95:106, 600:800].any(), "the rule is gone elsewhere"
    assert not kept[101:106, 490:510].any(), "nothing is added below a stroke that ends on the rule"
