"""Training material for unseen hands: the font split and checks, English prose lines, augmentation, calibration."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.forms import FONT_CACHE
from training import render
from training.fonts import (
    HELDOUT_FONTS,
    LEGACY_HELDOUT_FAMILIES,
    LEGACY_TRAINING_FAMILIES,
    NOT_ON_NPM,
    STYLE_GROUPS,
    TRAINING_FONTS,
    draws_lowercase_as_capitals,
    fetch_fonts,
    font_versions,
    package_spec,
    style_of,
)
from training.prose import DEFAULT_PROSE_DIR, VALIDATION_BOOK, ProseLines, book_files, clean_paragraph, cut_into_lines
from training.render import Augmentation, fit_text_to_font, render_line
from worker.calibration import Calibration, fit_line_model, line_signals, review_shares

DESIGN = Path(__file__).resolve().parents[2] / "shared" / "DESIGN.md"


def test_the_held_out_fifth_spans_every_style_and_keeps_earlier_splits() -> None:
    assert len(HELDOUT_FONTS) >= 40
    assert not set(HELDOUT_FONTS) & set(TRAINING_FONTS)
    styles = Counter(style_of(f) for f in HELDOUT_FONTS)
    assert set(styles) == set(STYLE_GROUPS)
    for group in STYLE_GROUPS:
        in_group = [f for f in TRAINING_FONTS + HELDOUT_FONTS if style_of(f) == group]
        assert styles[group] == math.ceil(len(in_group) / 5), group
    assert set(LEGACY_HELDOUT_FAMILIES) <= set(HELDOUT_FONTS), "earlier validation fonts stay unseen"
    assert not LEGACY_TRAINING_FAMILIES & set(HELDOUT_FONTS), "fonts earlier models learned cannot validate them"
    assert not NOT_ON_NPM & set(TRAINING_FONTS + HELDOUT_FONTS)


@pytest.mark.skipif(not DESIGN.exists(), reason="shared/DESIGN.md is not beside this checkout")
def test_every_font_family_of_the_design_notes_is_split() -> None:
    section = DESIGN.read_text().split("## Fonts for synthetic training data")[1].split("## Real handwriting")[0]
    listed: set[str] = set()
    for paragraph in section.split("\n\n"):
        heading, _, names = paragraph.partition(":")
        if heading.strip() in (
            "Everyday and school hands",
            "School scripts of many countries (the Playwrite families)",
            "Cursive and pen scripts",
        ):
            listed |= {name.strip(".") for name in names.split()}
    assert len(listed) > 200
    assert listed - NOT_ON_NPM <= set(TRAINING_FONTS + HELDOUT_FONTS)


def test_a_font_draws_only_what_has_an_outline() -> None:
    (italianno, *_) = fetch_fonts(FONT_CACHE, ["italianno"], strict=True)
    from fontTools.ttLib import TTFont

    assert "_" in {chr(c) for c in TTFont(italianno.path).getBestCmap()}, "the font maps an underscore ..."
    assert "_" not in italianno.charset, "... to an empty glyph, which must not be rendered"
    assert set("abcXYZ") <= italianno.charset
    assert fit_text_to_font("a_b", italianno) == "ab"


def test_small_capital_fonts_are_found_by_their_glyphs() -> None:
    (amatic, *_) = fetch_fonts(FONT_CACHE, ["amatic-sc"], strict=True)
    (caveat, *_) = fetch_fonts(FONT_CACHE, ["caveat"], strict=True)
    assert draws_lowercase_as_capitals(amatic.path)
    assert not draws_lowercase_as_capitals(caveat.path)
    assert fit_text_to_font("Jane Doe", amatic) == "JANE DOE"


def test_a_family_npm_does_not_serve_is_skipped(tmp_path: Path) -> None:
    assert fetch_fonts(tmp_path, ["no-such-family-inkwell-test"]) == []
    assert (tmp_path / "no-such-family-inkwell-test.missing").exists(), "not asked for again"
    with pytest.raises((subprocess.CalledProcessError, OSError)):  # npm's refusal, or no woff2 files
        fetch_fonts(tmp_path, ["no-such-family-inkwell-test"], strict=True)


def test_every_family_is_pinned_and_fetched_at_its_pinned_version(tmp_path: Path) -> None:
    """A font's new release would change the rendered lines and the generated forms: each family
    is fetched at the version in training/font_versions.json, and one unpacked at another is fetched again."""
    versions = font_versions()
    assert set(versions) == set(TRAINING_FONTS + HELDOUT_FONTS)
    assert all(version.count(".") == 2 for version in versions.values())
    assert package_spec("allura", versions) == f"@fontsource/allura@{versions['allura']}"
    assert package_spec("not-pinned", versions) == "@fontsource/not-pinned"
    first = fetch_fonts(tmp_path, ["allura"], strict=True)
    assert (tmp_path / "allura" / "VERSION").read_text() == versions["allura"]
    (tmp_path / "allura" / "VERSION").write_text("0.0.1")
    assert fetch_fonts(tmp_path, ["allura"], strict=True) == first
    assert (tmp_path / "allura" / "VERSION").read_text() == versions["allura"]


def test_a_copy_at_another_version_is_used_when_the_pinned_one_cannot_be_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline, or pinned to a release the registry lacks: the family unpacked before still serves."""
    from training import fonts

    first = fetch_fonts(tmp_path, ["allura"], strict=True)
    pins = tmp_path / "pins.json"
    pins.write_text(json.dumps({"allura": "0.0.0-no-such-release"}))
    monkeypatch.setattr(fonts, "FONT_VERSIONS_FILE", pins)
    assert fetch_fonts(tmp_path, ["allura"], strict=True) == first
    assert not (tmp_path / "allura.missing").exists()


def test_prose_is_cut_at_word_boundaries_into_line_lengths() -> None:
    paragraph = clean_paragraph(
        "_Says_ our friend: \u201cConsidering the subject, the discussion was good-tempered\u201d; " * 6
    )
    assert "_" not in paragraph and '"Considering' in paragraph
    pieces = cut_into_lines(paragraph, random.Random(3))
    assert " ".join(pieces) == paragraph, "no word lost, split or reordered"
    assert all(len(p) <= 72 for p in pieces) and all(len(p) >= 12 for p in pieces[:-1])
    assert len({len(p) for p in pieces}) > 3, "line lengths vary"


@pytest.mark.skipif(not DEFAULT_PROSE_DIR.exists(), reason="the English text data set is not on this machine")
def test_the_validation_book_never_feeds_training() -> None:
    training_books = book_files()
    assert len(training_books) == 5 and VALIDATION_BOOK not in {b.name for b in training_books}
    assert [b.name for b in book_files(validation=True)] == [VALIDATION_BOOK]
    train_lines = ProseLines(1)
    lines = [train_lines.line() for _ in range(300)]
    assert all(3 <= len(line) <= 72 for line in lines)
    held_out = {p for p in ProseLines(1, validation=True).paragraphs}
    assert not held_out & set(train_lines.paragraphs)
    assert ProseLines(5).line() == ProseLines(5).line(), "seeded"


def _font(family: str = "caveat"):
    (font, *_) = fetch_fonts(FONT_CACHE, [family], strict=True)
    return font


def test_augmented_lines_are_reproducible_from_their_seed() -> None:
    font = _font()
    first = [
        render_line("Jane Doe, 12 High St", font, random.Random(seed), 40, Augmentation(1.0)) for seed in range(12)
    ]
    again = [
        render_line("Jane Doe, 12 High St", font, random.Random(seed), 40, Augmentation(1.0)) for seed in range(12)
    ]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert len({a.tobytes() for a in first}) == 12
    assert all(a.shape[0] == 40 and a.min() < a.max() for a in first)


def test_each_augmentation_changes_the_line_as_it_says() -> None:
    font = _font()
    ink = render._draw_ink("Hello world", font, 56, random.Random(0), 0.0)
    assert ink.getbbox() is not None
    base = np.asarray(ink, dtype=np.int64).sum()
    thinner = [np.asarray(render._pen_width(ink, random.Random(s), 1.0, 0), dtype=np.int64).sum() for s in range(40)]
    assert min(thinner) < base < max(thinner), "some pens erode, some dilate"
    warped = [render._elastic(ink, random.Random(s), 1.0, 56) for s in range(10)]
    assert any(not np.array_equal(np.asarray(w), np.asarray(ink)) for w in warped)
    assert all(w.size == ink.size for w in warped)
    spaced = render._draw_ink("Hello", font, 56, _rng_with(lambda r: r.random() < 0.25), 1.0)
    assert spaced.getbbox() is not None
    page = np.full((60, 300), 200, np.uint8)
    page[20:40, 20:280] = 40
    fax = render._fax(page, random.Random(1))
    assert set(np.unique(fax)) <= {0, 255}
    ruled = [np.asarray(render._add_rules(ink, random.Random(s), 1.0)) for s in range(30)]
    assert any((r > np.asarray(ink)).any() for r in ruled), "rules and box edges are drawn over the line"
    composed = [np.asarray(render._compose(ink, random.Random(s), 1.0)) for s in range(30)]
    contrasts = [float(c.max()) - float(c.min()) for c in composed]
    assert min(contrasts) >= 60 and max(contrasts) > 150, "faint to full contrast, always legible"


def _rng_with(condition) -> random.Random:
    """A Random whose first draw satisfies ``condition`` (to reach a rare branch deterministically)."""
    for seed in range(1000):
        if condition(random.Random(seed)):
            return random.Random(seed)
    raise AssertionError("no seed found")


def test_scan_effects_include_dithered_and_fax_pages() -> None:
    font = _font()
    binary = 0
    for seed in range(200):
        pixels = render_line("Ref 4411", font, random.Random(seed), 40, Augmentation(1.0))
        assert pixels.shape[0] == 40
        values = np.unique(pixels)
        binary += len(values) <= 24  # binarised then reduced: few grey levels left
    assert binary > 3


def test_the_line_model_puts_the_wanted_share_of_errors_under_the_threshold() -> None:
    rng = random.Random(0)
    signals, exact = [], []
    for _ in range(600):
        ok = rng.random() < 0.6
        mean = rng.gauss(-0.05 if ok else -0.3, 0.08)
        signals.append(
            {
                "mean_log_prob": mean,
                "min_log_prob": mean * 4,
                "ctc_agreement": rng.gauss(0.97 if ok else 0.85, 0.05),
                "log_length": math.log1p(rng.randint(5, 60)),
            }
        )
        exact.append(ok)
    weights, bias = fit_line_model(signals, exact, threshold=0.8, flag_share=0.92)
    calibration = Calibration(temperature=1.3, weights=weights, bias=bias)
    confidences = [calibration.line_confidence(s, []) for s in signals]
    flagged_wrong, flagged_right = review_shares(confidences, exact, 0.8)
    assert flagged_wrong >= 0.92
    assert flagged_right < 0.5, "separable signals leave most exact lines unflagged"
    assert weights[0] > 0 and weights[2] > 0, "more probable and more agreed lines are more trusted"
    assert Calibration.from_manifest(json.loads(json.dumps(calibration.as_manifest()))) == calibration
    with pytest.raises(ValueError):
        fit_line_model(signals[:5], [True] * 5, 0.8, 0.9)


def test_signals_measure_the_decoder_and_ctc_agreement() -> None:
    signals = line_signals([0.9, 0.5, 0.99], "abc", "abd")
    assert signals["min_log_prob"] == pytest.approx(math.log(0.5))
    assert signals["ctc_agreement"] == pytest.approx(2 / 3)
    assert line_signals([0.9], "abc", None)["ctc_agreement"] == 1.0
    assert Calibration().line_confidence(signals, [0.9, 0.5, 0.99]) == pytest.approx((0.9 * 0.5 * 0.99) ** (1 / 3))


@pytest.mark.slow
def test_a_calibrated_checkpoint_reads_with_its_calibration(tiny_char_model: Path, tmp_path: Path) -> None:
    from tests.tiny_models import TEXTS, render_text_line
    from training.calibrate import TEMPERATURES, fit_temperature
    from training.validation_sets import LineSet
    from worker.recognizer import Recognizer

    folder = tmp_path / "model"
    shutil.copytree(tiny_char_model, folder)
    recognizer = Recognizer.load(folder, device="cpu", max_new_tokens=16)
    images = [render_text_line(t) for t in TEXTS]
    temperature = fit_temperature(recognizer, [LineSet("tiny", ("tiny",), images, list(TEXTS))])
    assert temperature in TEMPERATURES
    calibration = Calibration(temperature=2.0, weights=(1.0, 0.5, 2.0, -0.1), bias=-0.5)
    manifest = folder / "inkwell.json"
    entry = json.loads(manifest.read_text()) if manifest.exists() else {}
    manifest.write_text(json.dumps({**entry, "calibration": calibration.as_manifest()}))
    calibrated = Recognizer.load(folder, device="cpu", max_new_tokens=16)
    assert calibrated.calibration == calibration
    plain = Recognizer.load(folder, device="cpu", max_new_tokens=16, calibrated=False).recognize(images[:3])
    for result, before in zip(calibrated.recognize(images[:3]), plain, strict=True):
        assert result.text == before.text, "calibration changes confidences, never the reading"
        assert result.confidence == pytest.approx(calibration.line_confidence(result.signals, []))
        flatter = [t.confidence for t in result.tokens]
        sharper = [t.confidence for t in before.tokens]
        assert all(f <= s + 1e-6 for f, s in zip(flatter, sharper, strict=True) if s > 0.5), (
            "a temperature above 1 softens confident tokens"
        )


def test_line_texts_are_the_same_in_every_process() -> None:
    """Validation sets are rendered afresh by each `evaluate`: their texts must not depend on the
    process's string-hash seed (Faker builds some word lists from sets) or on today's date."""
    import subprocess
    import sys

    script = (
        "import hashlib\nfrom training.texts import FormTextGenerator\ng = FormTextGenerator(11)\n"
        "print(hashlib.sha1(repr([g.line() for _ in range(2000)]).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1


def test_the_fit_check_takes_trained_families_of_every_style_group() -> None:
    from training.fonts import HELDOUT_FONTS, STYLE_GROUPS, style_of
    from training.validation_sets import fit_check_families

    families = fit_check_families(20)
    assert len(families) == len(set(families)) == 20
    assert not set(families) & set(HELDOUT_FONTS)
    assert {style_of(f) for f in families} == set(STYLE_GROUPS)


@pytest.mark.slow
def test_the_evaluation_reports_cer_and_review_shares_per_group(
    tiny_char_model: Path, capsys: pytest.CaptureFixture
) -> None:
    from tests.tiny_models import TEXTS, render_text_line
    from training.evaluate import report
    from training.validation_sets import LineSet
    from worker.recognizer import Recognizer

    recognizer = Recognizer.load(tiny_char_model, device="cpu", max_new_tokens=16)
    images = [render_text_line(t) for t in TEXTS]
    sets = [
        LineSet("font:tiny", ("held-out fonts: forms", "style: print"), images, list(TEXTS)),
        LineSet("real:tiny", ("real: unseen writers",), images[:2], ["not what it says", "nor this"]),
    ]
    results = report(recognizer, sets, threshold=0.8)
    assert results["font:tiny"] < 0.2 and results["real:tiny"] > 0.5  # the tiny model reads its own lines
    # A fit check on trained fonts is reported in its own group and leaves the overall figures alone.
    fit_check = LineSet(
        "trained:tiny", ("trained fonts: forms (fit check)",), images[:2], ["xx", "yy"], in_overall=False
    )
    with_fit_check = report(recognizer, [*sets, fit_check], threshold=0.8)
    assert with_fit_check["trained fonts: forms (fit check)"] > 0.5
    assert {k: v for k, v in with_fit_check.items() if "fit check" not in k and k != "trained:tiny"} == results
    assert set(results) >= {
        "held-out fonts: forms",
        "style: print",
        "real: unseen writers",
        "all",
        "all/errors flagged",
        "all/exact flagged",
    }
    assert 0 <= results["all/errors flagged"] <= 1 and 0 <= results["all/exact flagged"] <= 1
    assert "errors flagged" in capsys.readouterr().out


def test_a_finer_pen_never_wipes_out_a_hairline_font() -> None:
    """Erosion thins the strokes of a font drawn with a broad pen, and leaves a hairline font as it
    is rather than breaking it into fragments; the random draws are the same either way."""
    broad = Image.new("L", (200, 60), 0)
    ImageDraw.Draw(broad).line((10, 30, 190, 30), fill=255, width=7)
    hairline = Image.new("L", (200, 60), 0)
    ImageDraw.Draw(hairline).line((10, 30, 190, 30), fill=255, width=2)
    eroding_seed = next(s for s in range(100) if random.Random(s).random() < 0.2)
    thinned = np.asarray(render._pen_width(broad, random.Random(eroding_seed), 1.0, 0))
    assert 0 < thinned.sum() < np.asarray(broad).sum()
    kept = render._pen_width(hairline, random.Random(eroding_seed), 1.0, 0)
    assert np.array_equal(np.asarray(kept), np.asarray(hairline))
    after_broad, after_hairline = random.Random(eroding_seed), random.Random(eroding_seed)
    render._pen_width(broad, after_broad, 1.0, 0)
    render._pen_width(hairline, after_hairline, 1.0, 0)
    assert after_broad.random() == after_hairline.random()
