"""Character error rate of an exported model, through the same Recognizer the service uses.

    python -m training evaluate [--model worker/models/inkwell-handwriting-small] [--limit N]

Validation sets: lines rendered (at 64 px, so the recognizer scales them as it scales real
crops) in each of the five held-out fonts, never seen in training; and the writer-disjoint real
validation lines of each collection, fed as the original images.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from PIL import Image

from inkwell.text_metrics import character_error_rate
from training.fonts import HELDOUT_FONTS, fetch_fonts
from training.real_lines import DEFAULT_REAL_DIR, load_real_lines
from training.render import Augmentation, fit_text_to_font, render_line
from training.texts import FormTextGenerator
from training.charset import in_alphabet, normalise_text

LINES_PER_FONT = 200


def heldout_font_sets(fonts_dir: Path, count: int, seed: int = 4242) -> dict[str, list[tuple[Image.Image, str]]]:
    """Per held-out font: ``count`` form lines with augmentation strength uniform in [0, 1]."""
    sets = {}
    for family in HELDOUT_FONTS:
        fonts = fetch_fonts(fonts_dir, [family])
        rng = random.Random(f"{seed}-{family}")
        texts = FormTextGenerator(seed)
        lines = []
        while len(lines) < count:
            font = rng.choice(fonts)
            text = fit_text_to_font("".join(c for c in normalise_text(texts.line()) if in_alphabet(c)), font)
            if text:
                pixels = render_line(text, font, rng, 64, Augmentation(rng.uniform(0, 1)))
                lines.append((Image.fromarray(pixels), text))
        sets[f"font:{family}"] = lines
    return sets


def real_sets(real_dir: Path, count: int) -> dict[str, list[tuple[Image.Image, str]]]:
    """The writer-disjoint validation lines, per collection."""
    _, validation, _ = load_real_lines(real_dir)
    sets: dict[str, list[tuple[Image.Image, str]]] = {}
    for line in validation:
        bucket = sets.setdefault(f"real:{line.dataset}", [])
        if not count or len(bucket) < count:
            bucket.append((Image.open(line.path).convert("L"), line.text))
    return sets


def evaluate_exported(model: Path, shards_dir: Path, limit: int = 0, real_dir: Path = DEFAULT_REAL_DIR, ctc_weight: float | None = None) -> dict[str, float]:
    """Print and return CER per set, the mean over held-out fonts, and all real lines together."""
    from worker.recognizer import Recognizer

    recognizer = Recognizer.load(model, device="auto", max_new_tokens=160, ctc_weight=ctc_weight)
    print(f"{model}: decoding {'jointly with CTC (weight ' + str(recognizer.ctc.weight) + ')' if recognizer.ctc else 'with the attention decoder alone'}")
    fonts_dir = shards_dir.parent / "fonts"
    sets = heldout_font_sets(fonts_dir, limit or LINES_PER_FONT) | real_sets(real_dir, limit)
    results: dict[str, float] = {}
    pairs_by_group: dict[str, list[tuple[str, str]]] = {"synthetic (held-out fonts)": [], "real (unseen writers)": []}
    started = time.perf_counter()
    lines = 0
    for name, samples in sets.items():
        predictions = recognizer.recognize([image for image, _ in samples], capture=False)
        pairs = [(p.text, text) for p, (_, text) in zip(predictions, samples)]
        results[name] = character_error_rate(pairs)
        pairs_by_group["synthetic (held-out fonts)" if name.startswith("font:") else "real (unseen writers)"] += pairs
        lines += len(samples)
        print(f"{name:<36} lines {len(samples):>5}   CER {results[name] * 100:6.2f}%", flush=True)
    for group, pairs in pairs_by_group.items():
        results[group] = character_error_rate(pairs)
        print(f"{group:<36} lines {len(pairs):>5}   CER {results[group] * 100:6.2f}%")
    print(f"{lines} lines in {time.perf_counter() - started:.1f} s on {recognizer.device}")
    return results
