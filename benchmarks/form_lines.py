"""Line finding, text type and fields on the generated form set (tests/form_set.py): prints line
recall and precision, duplicated text, the printed/handwritten accuracy, field pairing, whether
each value is read right after its label, and the CPU time of line finding per page (which
includes the text-type classifier).

    python -m benchmarks.form_lines              # the whole set (60 A4 pages at 200 dpi)
    python -m benchmarks.form_lines --forms 10   # the first 10
    python -m benchmarks.form_lines --write DIR  # also write the pages and truth.json there
    python -m benchmarks.form_lines --training --forms 20  # forms of the training seeds and hands
    python -m benchmarks.form_lines --detect-side 1152     # the detector on a smaller page

``--training`` measures on forms the text-type classifier was fitted on (seeds 5000 on, training
hands): a place to try a rule out before measuring it once on the evaluation set.

A found line matches a true line when its box covers at least 80% of the true line's ink box and
that ink box fills at least 35% of it (the detector pads its boxes; a box over a label and its
value, or half a value, matches neither), one to one, best IoU first. Recall: true lines matched;
precision: found lines matched. Duplicated text: a true line
of which two or more found lines (their tilted quadrilaterals, not their upright boxes) each
cover at least a quarter. Text type: right on found lines that match a true line. A field is
paired right when its label's found line is paired with exactly its value's found line.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tests.form_set import (
    EVAL_SEEDS,
    TRAINING_SEEDS_FROM,
    EvalForm,
    eval_hands,
    label_fonts,
    make_eval_form,
    training_hands,
)

TRAINING_SEEDS = tuple(range(TRAINING_SEEDS_FROM, TRAINING_SEEDS_FROM + 200))  # as many as the fit's default

MIN_COVER = 0.8  # of the true line's box inside the found box
MIN_PURITY = 0.35  # of the found box taken by the true line
COVER_SHARE = 0.25


def _area(box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _intersection(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def iou(a, b) -> float:
    inter = _intersection(a, b)
    return inter / max(_area(a) + _area(b) - inter, 1e-9)


def match_lines(
    truth: list[tuple[float, float, float, float]], found: list[tuple[float, float, float, float]]
) -> dict[int, int]:
    """True line index -> found line index, one to one, best IoU first (see the module's docstring)."""
    pairs = sorted(
        (
            (iou(t, f), i, j)
            for i, t in enumerate(truth)
            for j, f in enumerate(found)
            if _intersection(t, f) >= MIN_COVER * _area(t) and _intersection(t, f) >= MIN_PURITY * _area(f)
        ),
        reverse=True,
    )
    matched, used = {}, set()
    for _score, i, j in pairs:
        if i not in matched and j not in used:
            matched[i] = j
            used.add(j)
    return matched


def _polygon_overlap(a: np.ndarray, b: np.ndarray) -> float:
    area, _ = cv2.intersectConvexConvex(np.asarray(a, np.float32), np.asarray(b, np.float32))
    return float(area)


def duplicated(truth: list[np.ndarray], found: list[np.ndarray]) -> list[int]:
    """Indices of the true lines (tilted as on the page) that two or more found lines each cover a quarter of."""
    lines = []
    for index, t in enumerate(truth):
        area = abs(cv2.contourArea(np.asarray(t, np.float32)))
        covering = [f for f in found if _polygon_overlap(t, f) >= COVER_SHARE * area]
        if len(covering) >= 2:
            lines.append(index)
    return lines


@dataclass
class Tally:
    truth: int = 0
    found: int = 0
    matched: int = 0
    duplicates: int = 0
    typed: int = 0
    typed_right: int = 0
    fields: int = 0
    fields_right: int = 0
    order_kept: int = 0
    seconds: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def line(self) -> str:
        recall, precision = self.matched / max(self.truth, 1), self.matched / max(self.found, 1)
        return (
            f"lines: recall {recall:.4f} ({self.matched}/{self.truth}), precision {precision:.4f} "
            f"({self.matched}/{self.found}), "
            f"duplicated text {self.duplicates}"
        )


def score_form(
    form: EvalForm,
    found_quads: list[np.ndarray],
    tally: Tally,
    text_types: list[str] | None = None,
    fields: list[tuple[int, list[int]]] | None = None,
) -> dict[int, int]:
    """Add one form's figures to ``tally`` (found lines as their four corners).

    Returns its true -> found line matching.
    """
    found_boxes = [(*np.min(q, axis=0), *np.max(q, axis=0)) for q in found_quads]
    truth = [form.page_bbox(line) for line in form.lines]
    matched = match_lines(truth, found_boxes)
    tally.truth += len(truth)
    tally.found += len(found_boxes)
    tally.matched += len(matched)
    doubled = duplicated([form.page_quad(line) for line in form.lines], found_quads)
    tally.duplicates += len(doubled)
    tally.misses += [
        f"seed {form.seed}: {form.lines[i].text!r} duplicated (box {[round(v) for v in truth[i]]})" for i in doubled
    ]
    tally.misses += [f"seed {form.seed}: {form.lines[i].text!r}" for i in range(len(truth)) if i not in matched]
    if text_types is not None:
        for i, j in matched.items():
            tally.typed += 1
            tally.typed_right += text_types[j] == form.lines[i].kind
    if fields is not None:
        pairs = {key: values for key, values in fields}
        for truth_field in form.fields:
            tally.fields += 1
            key, value = matched.get(truth_field.key), matched.get(truth_field.value)
            tally.fields_right += key is not None and value is not None and pairs.get(key) == [value]
            tally.order_kept += (
                key is not None and value is not None and value == key + 1
            )  # found lines come in reading order
    return matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", type=int, default=len(EVAL_SEEDS))
    parser.add_argument("--write", type=Path, help="write the pages (PNG) and truth.json here")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--training", action="store_true", help="the training seeds and hands, not the evaluation set")
    parser.add_argument("--detect-side", type=int, help="the detector's long side (px), not DETECT_SIDE")
    args = parser.parse_args()

    from inkwell.fields import pair_fields
    from worker.line_finder import DETECT_SIDE, LineFinder

    finder = LineFinder(args.detect_side or DETECT_SIDE)
    hands, printed = (training_hands() if args.training else eval_hands()), label_fonts()
    seeds = TRAINING_SEEDS if args.training else EVAL_SEEDS
    tally, fax_tally = Tally(), Tally()
    records, fax_pages = [], 0
    for seed in seeds[: args.forms]:
        form = make_eval_form(seed, hands, printed)
        started = time.process_time()
        found = finder.find(form.image)
        tally.seconds.append(time.process_time() - started)
        fax_pages += form.fax
        kinds = [line.text_type for line in found]
        confidences = [line.text_type_confidence for line in found]
        fields = [(pair.key, pair.values) for pair in pair_fields([line.bbox for line in found], kinds, confidences)]
        for target in (tally, fax_tally) if form.fax else (tally,):
            score_form(form, [line.quad for line in found], target, kinds, fields)
        if args.write:
            args.write.mkdir(parents=True, exist_ok=True)
            name = f"form-{seed}.png"
            form.image.save(args.write / name)
            records.append(
                {
                    "file": name,
                    "seed": seed,
                    "fax": form.fax,
                    "rotation": form.rotation,
                    "lines": [
                        {"text": line.text, "kind": line.kind, "bbox": [round(v, 1) for v in form.page_bbox(line)]}
                        for line in form.lines
                    ],
                    "fields": [{"key": f.key, "value": f.value} for f in form.fields],
                }
            )
    if args.write:
        (args.write / "truth.json").write_text(json.dumps(records, indent=1))
    seconds = np.array(tally.seconds)
    which = "training forms (seeds 5000 on, training hands)" if args.training else "generated forms"
    print(f"{len(seconds)} {which} (A4, 200 dpi), {fax_pages} of them fax pages")
    print(tally.line())
    print(f"fax pages only: {fax_tally.line()}")
    print(
        f"text type right: {tally.typed_right / max(tally.typed, 1):.4f} ({tally.typed_right}/{tally.typed} found "
        "lines that match a true one); "
        f"fax pages only: {fax_tally.typed_right / max(fax_tally.typed, 1):.4f}"
    )
    print(
        f"fields paired right: {tally.fields_right / max(tally.fields, 1):.4f} ({tally.fields_right}/{tally.fields}); "
        f"value read right after its label: {tally.order_kept}/{tally.fields}"
    )
    print(f"line finding CPU per page: median {np.median(seconds):.2f} s, max {seconds.max():.2f} s")
    if args.show_misses:
        print("\n".join(tally.misses))


if __name__ == "__main__":
    main()
