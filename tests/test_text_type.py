"""Printed or handwritten (worker/text_type.py): the ink its features are measured on."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
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


def _typed_line(text: str, size: int) -> np.ndarray:
    """A line set in DejaVu Sans: its ink mask."""
    from PIL import ImageFont

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", size)
    page = Image.new("L", (40 + int(font.getlength(text)), size * 2), 255)
    ImageDraw.Draw(page).text((20, size // 3), text, font=font, fill=0)
    return (np.asarray(page) < 128).astype(np.uint8) * 255


def _scrawled_line(rng: np.random.Generator, size: int) -> np.ndarray:
    """A wandering pen trace of loops (no letters repeat alike): its ink mask."""
    steps = int(rng.integers(40, 90))
    x = np.cumsum(rng.uniform(2, 6, steps)) + 20
    y = size + size * 0.4 * np.sin(np.cumsum(rng.uniform(0.3, 1.2, steps))) + rng.normal(0, 2, steps)
    page = Image.new("L", (int(x[-1]) + 40, size * 2), 255)
    ImageDraw.Draw(page).line(list(zip(x.tolist(), y.tolist(), strict=True)), fill=0, width=int(rng.integers(2, 5)))
    return (np.asarray(page) < 128).astype(np.uint8) * 255


def test_a_line_is_prepared_from_its_ink_alone() -> None:
    """Cropped to its ink and scaled to the network's height: margins and resolution do not enter."""
    from worker import line_shapes

    line = _typed_line("Date of birth", 30)
    padded = np.pad(line, ((15, 40), (60, 5)))
    assert np.array_equal(line_shapes.prepare(line), line_shapes.prepare(padded))
    twice = cv2.resize(line, (line.shape[1] * 2, line.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    assert abs(line_shapes.prepare(twice).shape[1] - line_shapes.prepare(line).shape[1]) <= 1
    assert line_shapes.prepare(line).shape[0] == line_shapes.HEIGHT
    assert line_shapes.prepare(np.tile(line, (1, 20))).shape[1] == line_shapes.MAX_WIDTH
    assert not line_shapes.prepare(np.zeros((20, 50), np.uint8)).any()


def test_the_shape_network_learns_type_from_scrawl_and_is_saved_with_the_classifier(tmp_path) -> None:  # noqa: ANN001
    """Fitted on a few lines of type and of pen traces, it tells new ones apart; saved with the
    classifier and loaded back, it gives the same logits, as one more input column."""
    from worker import line_shapes, line_shapes_fit
    from worker.text_type import Network, TextTypeClassifier

    rng = np.random.default_rng(0)
    words = "Name Address Postcode Telephone Signature Date Employer Reference Country".split()

    def lines(count: int) -> tuple[list[np.ndarray], np.ndarray]:
        typed = [_typed_line(" ".join(rng.choice(words, 2)), int(rng.integers(18, 34))) for _ in range(count)]
        scrawled = [_scrawled_line(rng, int(rng.integers(18, 34))) for _ in range(count)]
        prepared = [line_shapes.prepare(line) for line in typed + scrawled]
        return prepared, np.array([0] * count + [1] * count)

    fitted, truth = lines(48)
    net = line_shapes_fit.fit(fitted, truth, epochs=6)
    held_out, held_truth = lines(20)
    right = ((line_shapes.logits(net, held_out) > 0) == (held_truth == 1)).mean()
    assert right >= 0.9

    hand_built = np.zeros((len(held_out), 3), np.float32)
    features = 4
    network = Network(
        np.zeros(features * 2), np.ones(features * 2), np.zeros((features * 2, 2)), np.zeros(2), np.zeros(2), 0.0
    )
    second = Network(
        np.zeros(features * 4), np.ones(features * 4), np.zeros((features * 4, 2)), np.zeros(2), np.zeros(2), 0.0
    )
    classifier = TextTypeClassifier(network, second, net)
    regions = [(line > 0.5).astype(np.uint8) * 255 for line in held_out]
    classifier.save(tmp_path / "text_type.json", "a test")
    loaded = TextTypeClassifier.load(tmp_path / "text_type.json")
    assert (tmp_path / "text_type_shapes.safetensors").exists()
    inputs = loaded.inputs(hand_built, regions)
    assert inputs.shape == (len(held_out), 4)
    assert np.allclose(inputs[:, -1], classifier.inputs(hand_built, regions)[:, -1], atol=1e-5)
    assert loaded.probability(inputs).shape == (len(held_out),)


def test_the_numpy_shape_network_gives_the_fitted_modules_logits() -> None:
    """The line finder runs the fitted weights in NumPy: same logits as the PyTorch module, on lines
    of odd and uneven widths padded into one batch; and a line's logit is the one it gets alone."""
    import torch

    from worker import line_shapes
    from worker.line_shapes_fit import LineShapeNet

    torch.manual_seed(3)
    module = LineShapeNet().eval()
    rng = np.random.default_rng(3)
    lines = [rng.random((line_shapes.HEIGHT, width)).astype(np.float32) for width in (3, 8, 13, 97, 300, 640)]

    def torch_logits(batch: list[np.ndarray]) -> np.ndarray:
        images, widths = line_shapes.batch(batch)
        with torch.inference_mode():
            return module(torch.from_numpy(images)[:, None], torch.from_numpy(widths)).numpy()

    network = module.exported()
    expected = torch_logits(lines)
    assert np.allclose(network.forward(*line_shapes.batch(lines)), expected, atol=1e-4)
    alone = np.concatenate([torch_logits([line]) for line in lines])
    assert np.allclose(expected, alone, atol=1e-4)
    # logits() sorts lines by width into batches and puts each answer back in its place
    for batch_size in (1, 2, 8):
        assert np.allclose(line_shapes.logits(network, lines[::-1], batch_size), alone[::-1], atol=1e-4)


@pytest.mark.slow
def test_finding_lines_never_imports_torch() -> None:
    """The pages worker finds lines and types them (the shape network included) without PyTorch."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from PIL import Image, ImageDraw; from worker.line_finder import LineFinder; "
        "page = Image.new('L', (800, 300), 255); ImageDraw.Draw(page).text((40, 100), 'Name: Jane Doe', fill=0); "
        "page = page.resize((1600, 600)); LineFinder().find(page); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers'}))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip().splitlines()[-1] == "[]"
