"""Fit the printed/handwritten classifier (worker/text_type.py) on generated forms.

    python -m scripts.train_text_type [--forms 200]

The forms are made like the evaluation set (tests/form_set.py) but from other seeds (5000 on; the
evaluation seeds are 1000-1059) and written in the 142 families of the training split
(training/fonts.py TRAINING_FONTS) that are not evaluation hands (tests/form_set.py EVAL_HANDS); the lines are those the
line finder finds, labelled by the form line they match (lines matching none give context only).
Each form's line features are kept in var/cache/text_type/ (a form is found and measured once;
delete the folder after changing the line finder or the features). Writes
worker/models/text_type.json and prints the accuracy on the training lines; the figure that
counts is the one ``python -m benchmarks.form_lines`` prints on the evaluation set.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from benchmarks.form_lines import match_lines
from tests.form_set import (
    EVAL_HANDS,
    EVAL_SEEDS,
    TRAINING_HAND_FAMILIES,
    TRAINING_SEEDS_FROM,
    label_fonts,
    make_eval_form,
    training_hands,
)
from worker.line_finder import LineFinder, ink_mask, line_features, rule_mask, smoothed_if_bilevel, text_type_ink
from worker.text_type import WEIGHTS, TextTypeClassifier

CACHE = Path(__file__).resolve().parents[1] / "var" / "cache" / "text_type"


def form_lines(seed: int, finder: LineFinder, hands: list, printed: list) -> tuple[np.ndarray, np.ndarray]:
    """(base features of every line found on form ``seed``, their truth: 1 handwritten, 0 printed, -1 none)."""
    form = make_eval_form(seed, hands, printed)
    found = finder.find(form.image)
    matched = match_lines([form.page_bbox(line) for line in form.lines], [line.bbox for line in found])
    grey = np.asarray(smoothed_if_bilevel(form.image.convert("L")))
    ink = ink_mask(grey)
    ink = text_type_ink(ink, rule_mask(ink))  # as LineFinder.find measures them
    truth = np.full(len(found), -1, dtype=np.int8)
    for true_index, index in matched.items():
        truth[index] = form.lines[true_index].kind == "handwritten"
    return line_features(found, ink), truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", type=int, default=200)
    args = parser.parse_args()
    seeds = range(TRAINING_SEEDS_FROM, TRAINING_SEEDS_FROM + args.forms)
    assert not set(seeds) & set(EVAL_SEEDS), "never fit on the evaluation forms"
    assert not set(TRAINING_HAND_FAMILIES) & set(EVAL_HANDS), "never fit on the evaluation hands"
    CACHE.mkdir(parents=True, exist_ok=True)
    finder, hands, printed = None, None, None
    pages, truths = [], []
    hand_list = hashlib.sha1(" ".join(TRAINING_HAND_FAMILIES).encode()).hexdigest()[:8]
    for seed in seeds:
        cached = CACHE / f"form-{seed}-{hand_list}.npz"  # the forms change with the hands
        if not cached.exists():
            if finder is None:
                finder, hands, printed = LineFinder(), training_hands(), label_fonts()
            base, truth = form_lines(seed, finder, hands, printed)
            np.savez(cached, base=base, truth=truth)
        with np.load(cached) as stored:
            pages.append(stored["base"])
            truths.append(stored["truth"])
    classifier = TextTypeClassifier.fit(pages, truths)
    right = total = 0
    for base, truth in zip(pages, truths, strict=True):
        known = truth >= 0
        right += int(((classifier.probability(base) >= 0.5) == (truth == 1))[known].sum())
        total += int(known.sum())
    note = (
        f"fitted by scripts/train_text_type.py on {total} lines of {args.forms} generated forms (training hands, seeds "
        f"{seeds.start}-{seeds.stop - 1}); training accuracy {right / total:.4f}"
    )
    classifier.save(WEIGHTS, note)
    print(note)


if __name__ == "__main__":
    main()
