"""Fit the printed/handwritten classifier (worker/text_type.py) on generated forms.

    python -m scripts.train_text_type [--forms 200]

The forms are made like the evaluation set (tests/form_set.py) but from other seeds (5000 on; the
evaluation seeds are 1000-1059) and written in the 142 families of the training split
(training/fonts.py TRAINING_FONTS) that are not evaluation hands (tests/form_set.py EVAL_HANDS); the lines are those the
line finder finds, labelled by the form line they match (lines matching none give context only).
The shape network (worker/line_shapes.py) is fitted first, on the lines' upright ink. Its
logit is a feature of the two networks, which must learn how far to trust it on lines it was not
fitted on: they see its answers from networks fitted on the other half of the forms (two folds).
Each form's lines are kept in var/cache/text_type/ (a form is found and measured once; delete the
folder after changing the line finder's rules or the features). Writes worker/models/text_type.json and
text_type_shapes.safetensors and prints the accuracy on the training lines; the figure that
counts is the one ``python -m benchmarks.form_lines`` prints on the evaluation set.

    python -m scripts.train_text_type --check 50   # fit on all but the last 50 forms, measure on those

``--check`` compares the classifier with and without the shape network on training forms held
out of the fit (written in the same hands): a place to try an idea before the evaluation set.
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
from worker import line_shapes, line_shapes_fit
from worker.line_finder import (
    DETECT_SIDE,
    LineFinder,
    ink_mask,
    line_regions,
    region_features,
    rule_mask,
    smoothed_if_bilevel,
    text_type_ink,
)
from worker.text_type import WEIGHTS, TextTypeClassifier

CACHE = Path(__file__).resolve().parents[1] / "var" / "cache" / "text_type"
SHAPE_FOLDS = 2


class Form:
    """One generated form's found lines: hand-built features, prepared ink for the shape network, truth."""

    def __init__(self, base: np.ndarray, shapes: list[np.ndarray], truth: np.ndarray) -> None:
        self.base, self.shapes, self.truth = base, shapes, truth

    @classmethod
    def made(cls, seed: int, finder: LineFinder, hands: list, printed: list) -> Form:
        """Form ``seed`` made, its lines found and labelled (1 handwritten, 0 printed, -1 matching no true line)."""
        form = make_eval_form(seed, hands, printed)
        found = finder.find(form.image)
        matched = match_lines([form.page_bbox(line) for line in form.lines], [line.bbox for line in found])
        grey = np.asarray(smoothed_if_bilevel(form.image.convert("L")))
        ink = ink_mask(grey)
        regions = line_regions(found, text_type_ink(ink, rule_mask(ink)))  # as LineFinder.find measures them
        truth = np.full(len(found), -1, dtype=np.int8)
        for true_index, index in matched.items():
            truth[index] = form.lines[true_index].kind == "handwritten"
        return cls(region_features(regions), [line_shapes.prepare(region) for region in regions], truth)

    def save(self, path: Path) -> None:
        pixels = np.zeros((line_shapes.HEIGHT, 0), np.uint8)  # a form with no line found keeps none
        if self.shapes:
            pixels = np.concatenate([np.round(s * 255).astype(np.uint8) for s in self.shapes], axis=1)
        np.savez(path, base=self.base, truth=self.truth, pixels=pixels, widths=[s.shape[1] for s in self.shapes])

    @classmethod
    def load(cls, path: Path) -> Form:
        with np.load(path) as stored:
            edges = np.cumsum([0, *stored["widths"]])
            pixels = stored["pixels"].astype(np.float32) / 255.0
            shapes = [pixels[:, a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]
            return cls(stored["base"], shapes, stored["truth"])


def load_forms(seeds: range) -> list[Form]:
    """The forms of ``seeds``, from the cache where they were made before."""
    CACHE.mkdir(parents=True, exist_ok=True)
    # the forms change with the hands, the lines found on them with the detector's page size, and
    # the shape network's input with its size
    made_by = [*TRAINING_HAND_FAMILIES, str(DETECT_SIDE), str(line_shapes.HEIGHT), str(line_shapes.MAX_WIDTH)]
    key = hashlib.sha1(" ".join(made_by).encode()).hexdigest()[:8]
    finder, hands, printed = None, None, None
    forms = []
    for seed in seeds:
        cached = CACHE / f"lines-{seed}-{key}.npz"
        if not cached.exists():
            if finder is None:
                finder, hands, printed = LineFinder(), training_hands(), label_fonts()
            Form.made(seed, finder, hands, printed).save(cached)
        forms.append(Form.load(cached))
    return forms


def fit_shapes(forms: list[Form], seed: int = 0) -> line_shapes.ShapeNetwork:
    """The shape network fitted on every labelled line of ``forms``."""
    lines = [shape for form in forms for shape, truth in zip(form.shapes, form.truth, strict=True) if truth >= 0]
    truth = np.concatenate([form.truth[form.truth >= 0] for form in forms])
    return line_shapes_fit.fit(lines, truth, seed=seed)


def fit(forms: list[Form], shapes: bool) -> TextTypeClassifier:
    """The classifier fitted on ``forms``; with ``shapes``, with a shape network whose logits the two
    networks learn from out of fold (each form's from a network fitted on the other folds' forms)."""
    truths = [form.truth for form in forms]
    if not shapes:
        return TextTypeClassifier.fit([form.base for form in forms], truths)
    pages: list[np.ndarray] = [np.empty(0)] * len(forms)
    for fold in range(SHAPE_FOLDS):
        net = fit_shapes([form for i, form in enumerate(forms) if i % SHAPE_FOLDS != fold], seed=fold)
        for i in range(fold, len(forms), SHAPE_FOLDS):
            pages[i] = line_shapes.with_logits(net, forms[i].base, forms[i].shapes)
    return TextTypeClassifier.fit(pages, truths, shapes=fit_shapes(forms))


def accuracy(classifier: TextTypeClassifier, forms: list[Form]) -> tuple[int, int]:
    """(lines typed right, labelled lines) on ``forms``."""
    right = total = 0
    for form in forms:
        base = form.base
        if classifier.shapes is not None:
            base = line_shapes.with_logits(classifier.shapes, form.base, form.shapes)
        known = form.truth >= 0
        right += int(((classifier.probability(base) >= 0.5) == (form.truth == 1))[known].sum())
        total += int(known.sum())
    return right, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", type=int, default=200)
    parser.add_argument("--check", type=int, default=0, help="hold out the last N forms and compare, writing nothing")
    args = parser.parse_args()
    seeds = range(TRAINING_SEEDS_FROM, TRAINING_SEEDS_FROM + args.forms)
    assert not set(seeds) & set(EVAL_SEEDS), "never fit on the evaluation forms"
    assert not set(TRAINING_HAND_FAMILIES) & set(EVAL_HANDS), "never fit on the evaluation hands"
    if not 0 <= args.check < args.forms:
        parser.error("--check takes fewer forms than --forms")
    forms = load_forms(seeds)
    if args.check:
        fitted, held_out = forms[: -args.check], forms[-args.check :]
        for shapes in (False, True):
            right, total = accuracy(fit(fitted, shapes), held_out)
            print(f"{'with' if shapes else 'without'} the shape network: {right / total:.4f} ({right}/{total})")
        return
    classifier = fit(forms, shapes=True)
    right, total = accuracy(classifier, forms)
    note = (
        f"fitted by scripts/train_text_type.py on {total} lines of {args.forms} generated forms (training hands, seeds "
        f"{seeds.start}-{seeds.stop - 1}); accuracy on those lines {right / total:.4f} (in sample)"
    )
    classifier.save(WEIGHTS, note)
    print(note)


if __name__ == "__main__":
    main()
