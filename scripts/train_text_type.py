"""Fit the printed/handwritten classifier (worker/text_type.py) on generated forms.

    python -m scripts.train_text_type [--forms 80]

The forms are made like the evaluation set (tests/form_set.py) but from other seeds and written
in the 39 families the bundled model trained on (training/fonts.py LEGACY_TRAINING_FAMILIES), never the
evaluation hands; the lines
are those the line finder finds, labelled by the form they match. Writes
worker/models/text_type.json and prints the accuracy on the training lines; the figure that
counts is the one ``python -m benchmarks.form_lines`` prints on the evaluation set.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.form_lines import match_lines
from tests.form_set import label_fonts, make_eval_form, training_hands
from worker.line_finder import LineFinder, ink_mask, line_features, rule_mask, smoothed_if_bilevel
from worker.text_type import WEIGHTS, TextTypeClassifier

TRAIN_SEEDS_FROM = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", type=int, default=80)
    args = parser.parse_args()
    finder, hands, printed = LineFinder(), training_hands(), label_fonts()
    rows, labels = [], []
    for seed in range(TRAIN_SEEDS_FROM, TRAIN_SEEDS_FROM + args.forms):
        form = make_eval_form(seed, hands, printed)
        found = finder.find(form.image)
        matched = match_lines([form.page_bbox(line) for line in form.lines], [line.bbox for line in found])
        grey = np.asarray(smoothed_if_bilevel(form.image.convert("L")))
        ink = ink_mask(grey)
        ink = np.where(rule_mask(ink) > 0, 0, ink)
        batch = line_features(found, ink)
        for truth, index in matched.items():
            rows.append(batch[index])
            labels.append(form.lines[truth].kind == "handwritten")
    x, y = np.stack(rows), np.array(labels)
    classifier = TextTypeClassifier.fit(x, y)
    accuracy = float(((classifier.probability(x) >= 0.5) == y).mean())
    note = (
        f"fitted by scripts/train_text_type.py on {len(y)} lines of {args.forms} generated forms (training hands); "
        f"training accuracy {accuracy:.4f}"
    )
    classifier.save(WEIGHTS, note)
    print(note)


if __name__ == "__main__":
    main()
