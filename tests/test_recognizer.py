"""The recognizer on real (tiny) checkpoints loaded through from_pretrained: exactness of batching,
token confidences, attention maps and embeddings, for a character model and a BPE model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from inkwell.paths import BUNDLED_MODEL
from tests.tiny_models import TEXTS, render_text_line
from worker.ctc_head import ctc_greedy_lengths
from worker.recognizer import RecognitionError, Recognizer


@pytest.fixture(scope="module", params=["char", "bpe"])
def recognizer(request: pytest.FixtureRequest) -> Recognizer:
    folder = request.getfixturevalue(f"tiny_{request.param}_model")
    return Recognizer.load(folder, device="cpu", max_new_tokens=32, batch_size=3)


def _mixed_width_lines() -> list[Image.Image]:
    """The training lines, some with extra margin so widths (and batch neighbours) vary."""
    images = []
    for index, text in enumerate(TEXTS):
        image = render_text_line(text)
        if index % 3 == 1:
            image = ImageOps.expand(image, border=(0, 0, 40, 0), fill="white")
        images.append(image)
    return images


def test_reads_the_lines_it_was_trained_on(recognizer: Recognizer) -> None:
    results = recognizer.recognize([render_text_line(t) for t in TEXTS])
    assert [r.text for r in results] == list(TEXTS)
    assert all(0.5 < r.confidence <= 1.0 for r in results)


def test_batched_equals_one_at_a_time(recognizer: Recognizer) -> None:
    images = _mixed_width_lines()
    batched = recognizer.recognize(images)
    for image, together in zip(images, batched, strict=True):
        alone = recognizer.recognize([image])[0]
        assert alone.text == together.text
        assert alone.confidence == pytest.approx(together.confidence, abs=1e-4)
        assert [t.text for t in alone.tokens] == [t.text for t in together.tokens]
        np.testing.assert_allclose(
            [t.confidence for t in alone.tokens], [t.confidence for t in together.tokens], atol=1e-4
        )
        np.testing.assert_allclose(alone.attention, together.attention, atol=1e-4)
        np.testing.assert_allclose(alone.embedding, together.embedding, atol=1e-4)


def test_regrouping_by_ctc_length_keeps_every_line_exact() -> None:
    """With a CTC head (the bundled model) lines are decoded in batches regrouped by predicted
    length, not in width order: results still come back in input order, equal to reading alone."""
    recognizer = Recognizer.load(BUNDLED_MODEL, device="cpu", batch_size=2)
    images = _mixed_width_lines()
    encoded = recognizer._encode(images)
    lengths = [line.predicted_length for line in encoded]
    widths = [image.width / image.height for image in images]
    by_length = sorted(range(len(images)), key=lambda i: lengths[i])
    assert by_length != sorted(range(len(images)), key=lambda i: widths[i])  # regrouping changes the batches
    batched = recognizer.recognize(images)
    for image, together in zip(images, batched, strict=True):
        alone = recognizer.recognize([image])[0]
        assert alone.text == together.text
        assert alone.confidence == pytest.approx(together.confidence, abs=1e-4)
        np.testing.assert_allclose(alone.attention, together.attention, atol=1e-4)
        np.testing.assert_allclose(alone.embedding, together.embedding, atol=1e-4)


def test_ctc_greedy_length_merges_repeats_and_drops_blanks() -> None:
    best = torch.tensor([[1, 1, 0, 1, 2, 2, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]])  # "1 1 2" and nothing
    log_probs = torch.nn.functional.one_hot(best, 3).float().log_softmax(dim=-1)
    assert ctc_greedy_lengths(log_probs, blank_id=0) == [3, 0]


def test_a_missing_result_raises_instead_of_shortening_the_list(tiny_char_model: Path) -> None:
    class Lossy(Recognizer):
        def _decode(self, lines, capture, min_new_tokens=None):
            return super()._decode(lines, capture, min_new_tokens)[:-1]  # one line of the batch lost

    lossy = Lossy.load(tiny_char_model, device="cpu", max_new_tokens=32, batch_size=2)
    with pytest.raises(RecognitionError, match="lines"):
        lossy.recognize([render_text_line(t) for t in TEXTS[:3]])


def test_tokens_attention_and_embedding_are_consistent(recognizer: Recognizer) -> None:
    for result in recognizer.recognize(_mixed_width_lines()):
        assert "".join(t.text for t in result.tokens).strip() == result.text
        assert result.attention.dtype == np.float32
        assert result.attention.shape[0] == len(result.tokens)
        np.testing.assert_allclose(result.attention.sum(axis=(1, 2)), 1.0, atol=1e-5)
        assert (result.attention >= 0).all()
        assert result.embedding.ndim == 1 and result.embedding.shape[0] == recognizer.model.config.encoder.hidden_size
        assert np.linalg.norm(result.embedding) == pytest.approx(1.0, abs=1e-5)
        line_confidence = np.exp(np.mean(np.log([t.confidence for t in result.tokens])))
        assert result.confidence == pytest.approx(line_confidence, rel=0.05)  # plus the end token's probability


def test_attention_grid_covers_just_the_line(tiny_char_model: Path, tiny_bpe_model: Path) -> None:
    char = Recognizer.load(tiny_char_model, device="cpu", max_new_tokens=32)
    narrow, wide = render_text_line("ink"), render_text_line("Paris 75001")
    # fit-pad: full-height 8-px columns; only the columns the line covers are kept
    for image in (narrow, wide):
        result = char.recognize([image])[0]
        scale = 32 / image.height
        assert result.attention.shape[1:] == (1, int(np.ceil(image.width * scale / 8)))
    # squash-resize (DeiT, 16-px patches over 32x128): the whole 2x8 grid is the line
    bpe = Recognizer.load(tiny_bpe_model, device="cpu", max_new_tokens=32)
    assert bpe.recognize([wide])[0].attention.shape[1:] == (2, 8)


def test_capture_off_keeps_the_text(recognizer: Recognizer) -> None:
    images = _mixed_width_lines()
    plain = recognizer.recognize(images, capture=False)
    assert [r.text for r in plain] == [r.text for r in recognizer.recognize(images)]
    assert all(r.attention.size == 0 and r.embedding.size == 0 for r in plain)


def test_special_token_ids_come_from_the_checkpoint(tiny_char_model: Path, tiny_bpe_model: Path) -> None:
    assert Recognizer.load(tiny_char_model, device="cpu").decoder_start_token_id == 0
    assert Recognizer.load(tiny_bpe_model, device="cpu").decoder_start_token_id == 2


def test_cache_is_forced_on_and_length_capped(tiny_char_model: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "no-cache"
    shutil.copytree(tiny_char_model, copy)
    config = (
        json.loads((copy / "generation_config.json").read_text()) if (copy / "generation_config.json").exists() else {}
    )
    config["use_cache"] = False  # as several Microsoft checkpoints ship
    (copy / "generation_config.json").write_text(json.dumps(config))
    recognizer = Recognizer.load(copy, device="cpu", max_new_tokens=3)
    assert recognizer.model.generation_config.use_cache is True
    result = recognizer.recognize([render_text_line("hello world")])[0]
    assert len(result.tokens) <= 3 and result.text == "hel"


def test_preprocessing_can_be_overridden(tiny_char_model: Path) -> None:
    squashed = Recognizer.load(tiny_char_model, device="cpu", preprocessing="processor")
    assert squashed.fit_pad is None
    assert squashed.recognize([render_text_line("ink")])[0].attention.shape[1:] == (1, 32)


def test_empty_input_gives_empty_output(recognizer: Recognizer) -> None:
    assert recognizer.recognize([]) == []


def test_colour_and_odd_modes_are_accepted(recognizer: Recognizer) -> None:
    base = render_text_line("Jane Doe")
    variants = [base.convert("L"), base.convert("RGBA"), base.convert("P"), base.convert("CMYK"), base.convert("1")]
    texts = {r.text for r in recognizer.recognize(variants)}
    assert texts == {"Jane Doe"}


def test_a_minimum_length_makes_every_line_decode_that_long(tiny_char_model: Path) -> None:
    """benchmarks.model_capacity compares model sizes at equal work: every line decodes exactly
    ``min_new_tokens`` steps (one attention row each), however short its text."""
    forced = Recognizer.load(tiny_char_model, device="cpu", max_new_tokens=14)
    lines = [render_text_line(text) for text in ("ab", TEXTS[0], TEXTS[1])]
    free = forced.recognize(lines)
    forced.min_new_tokens = 14
    assert min(len(r.attention) for r in free) < 14
    assert [len(r.attention) for r in forced.recognize(lines)] == [14, 14, 14]
