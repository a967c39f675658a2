"""Character error rate and review-flag shares of an exported model, through the service's Recognizer.

    python -m training evaluate [--model worker/models/inkwell-handwriting-small] [--forms-per-font N]

Reports CER per held-out font, per style group, per set (held-out fonts with form texts,
held-out fonts with English prose, real lines by unseen writers), and at the review threshold
the share of lines with an error that are flagged and the share of exactly read lines that are
(see training.validation_sets for what is in each set).
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from inkwell.progress import echo_above, progress
from inkwell.text_metrics import character_error_rate
from training.real_lines import DEFAULT_REAL_DIR
from training.validation_sets import LineSet, heldout_font_sets, real_sets, trained_font_sets
from worker.calibration import review_shares

FORMS_PER_FONT = 30
PROSE_PER_FONT = 10
DEFAULT_THRESHOLD = 0.8  # inkwell.config.Settings.review_threshold's default


def evaluate_exported(
    model: Path,
    fonts_dir: Path,
    forms_per_font: int = FORMS_PER_FONT,
    prose_per_font: int = PROSE_PER_FONT,
    real_limit: int = 0,
    real_dir: Path = DEFAULT_REAL_DIR,
    ctc_weight: float | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    trained_fonts: int = 0,
) -> dict[str, float]:
    """Print and return CER per set and group, and the review shares per group and overall.

    ``trained_fonts`` families the model was trained on are read too, as a fit check reported
    apart (not in "all"): held-out figures far above theirs mean the model lacks variety of
    hands, figures close to theirs that it lacks capacity or training.
    """
    from worker.recognizer import Recognizer

    recognizer = Recognizer.load(model, device="auto", max_new_tokens=160, ctc_weight=ctc_weight)
    decoding = (
        f"jointly with CTC (weight {recognizer.ctc.weight})" if recognizer.ctc else "with the attention decoder alone"
    )
    calibrated = "calibrated" if recognizer.calibration.weights is not None else "uncalibrated (geometric mean)"
    print(f"{model}: decoding {decoding}; line confidence {calibrated}; review threshold {threshold}")
    sets = heldout_font_sets(fonts_dir, forms_per_font, prose_per_font) + real_sets(real_dir, real_limit)
    sets += trained_font_sets(fonts_dir, trained_fonts, forms_per_font) if trained_fonts else []
    return report(recognizer, sets, threshold)


def report(recognizer, sets: list[LineSet], threshold: float) -> dict[str, float]:
    """Read every set, print per-set lines then per-group summaries; return the figures by name."""
    results: dict[str, float] = {}
    pairs_by_group: dict[str, list[tuple[str, str]]] = defaultdict(list)
    flags_by_group: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    started = time.perf_counter()
    lines = 0
    for line_set in progress(sets, desc="evaluate", unit=" sets"):
        predictions = recognizer.recognize(line_set.images, capture=False)
        if len(predictions) != len(line_set.texts):
            raise RuntimeError(f"{line_set.name}: {len(predictions)} results for {len(line_set.texts)} lines")
        pairs = [(p.text, truth) for p, truth in zip(predictions, line_set.texts, strict=True)]
        flags = [(p.confidence, p.text == truth) for p, truth in zip(predictions, line_set.texts, strict=True)]
        results[line_set.name] = character_error_rate(pairs)
        for group in (*line_set.groups, "all") if line_set.in_overall else line_set.groups:
            pairs_by_group[group] += pairs
            flags_by_group[group] += flags
        lines += len(pairs)
        echo_above(f"{line_set.name:<40} lines {len(pairs):>5}   CER {results[line_set.name] * 100:6.2f}%")
    print(f"\n{'group':<40} {'lines':>6} {'CER':>8} {'exact':>7} {'errors flagged':>15} {'exact flagged':>14}")
    for group in sorted(pairs_by_group, key=lambda g: (g == "all", g.startswith(("style", "trained")), g)):
        pairs, flags = pairs_by_group[group], flags_by_group[group]
        cer = character_error_rate(pairs)
        exact = sum(ok for _, ok in flags) / len(flags)
        flagged_wrong, flagged_right = review_shares([c for c, _ in flags], [ok for _, ok in flags], threshold)
        results[group] = cer
        results[f"{group}/errors flagged"] = flagged_wrong
        results[f"{group}/exact flagged"] = flagged_right
        print(
            f"{group:<40} {len(pairs):>6} {cer * 100:7.2f}% {exact * 100:6.1f}% {flagged_wrong * 100:14.1f}% "
            f"{flagged_right * 100:13.1f}%"
        )
    print(f"\n{lines} lines in {time.perf_counter() - started:.1f} s on {recognizer.device}")
    return results
