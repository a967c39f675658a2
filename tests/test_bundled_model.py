"""The bundled model as a user meets it: a Hugging Face folder that loads like a Hub checkpoint,
publishable as is (card metadata, Inference Endpoints handler), and that reads clear handwriting
in fonts it never saw, with no network."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from inkwell.paths import BUNDLED_MODEL
from inkwell.text_metrics import character_error_rate
from tests.forms import FONT_CACHE
from training.fonts import LEGACY_HELDOUT_FAMILIES, fetch_fonts
from training.render import Augmentation, fit_text_to_font, render_line

pytestmark = pytest.mark.slow

# Clear form-like lines in five clear held-out fonts (the ones earlier models were validated on; all
# 40 held-out families, calligraphic scripts included, are measured by `python -m training evaluate`),
# rendered without augmentation. The model reads
# most of them exactly; the bounds below sit a margin under what the committed model measures
# (the model card gives the figures on the full validation sets).
CLEAR_TEXTS = ["John Smith", "12 Main Street", "London", "Yes", "Mary Jones", "01/04/1987", "Leeds LS1 4AP", "No"]
CLEAR_LINES = [(family, text) for i, family in enumerate(LEGACY_HELDOUT_FAMILIES) for text in CLEAR_TEXTS[i % 2 :: 2]]
MAX_CLEAR_CER = 0.05  # measured 0.006 with run 9 (one line of 20 with one character wrong), 0.000 with run 8
MIN_EXACT_SHARE = 0.75  # measured 0.95 (19 of 20) with run 9 and the run-6 export; 1.00 and 0.85 with others


def _clear_line(family: str, text: str) -> Image.Image:
    (font, *_) = fetch_fonts(FONT_CACHE, [family])
    return Image.fromarray(render_line(fit_text_to_font(text, font), font, random.Random(0), 64, Augmentation(0.0)))


def test_the_folder_loads_like_a_hub_checkpoint() -> None:
    from transformers import AutoImageProcessor, AutoTokenizer, TrOCRProcessor, VisionEncoderDecoderModel

    model = VisionEncoderDecoderModel.from_pretrained(BUNDLED_MODEL)
    processor = TrOCRProcessor.from_pretrained(BUNDLED_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(BUNDLED_MODEL)
    assert model.config.encoder.model_type == "vit" and model.config.decoder.model_type == "trocr"
    assert AutoImageProcessor.from_pretrained(BUNDLED_MODEL).inkwell_fit_pad["fill"] == "mean"
    assert tokenizer.decode(tokenizer("Jane Doe, 12/05").input_ids, skip_special_tokens=True) == "Jane Doe, 12/05"
    pixel_values = processor(images=Image.new("RGB", (300, 40), "white"), return_tensors="pt").pixel_values
    assert tuple(model.config.encoder.image_size) == (64, 512)  # since run 9; the card and README say so
    assert tuple(pixel_values.shape) == (1, 3, 64, 512)
    size = sum(f.stat().st_size for f in BUNDLED_MODEL.iterdir())
    assert size < 40 * 2**20


def test_the_card_carries_hub_metadata() -> None:
    card = (BUNDLED_MODEL / "README.md").read_text()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["license"] and metadata["pipeline_tag"] == "image-to-text"
    assert "cer" in metadata["metrics"] and len(metadata["datasets"]) == 5
    for credit in ("Bibliothèque Sébert", "non commerciales", "CC BY 4.0"):
        assert credit in card


def test_the_folder_carries_the_current_handler_and_decoder() -> None:
    """The export copies these files so the folder stands alone on the Hub; the copies must not drift."""
    from training.export import CTC_PREFIX, HANDLER

    for source in (HANDLER, CTC_PREFIX):
        assert (BUNDLED_MODEL / source.name).read_text() == source.read_text(), f"re-export or copy {source}"


def test_the_inference_endpoints_handler(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("handler", BUNDLED_MODEL / "handler.py")
    handler_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler_module)
    handler = handler_module.EndpointHandler(str(BUNDLED_MODEL))
    image = _clear_line(*CLEAR_LINES[0])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    for inputs in (image, buffer.getvalue(), base64.b64encode(buffer.getvalue()).decode()):
        (result,) = handler({"inputs": inputs})
        assert set(result) == {"generated_text", "confidence"} and 0 < result["confidence"] <= 1
    # as Inference Endpoints send it (base64 and parameters) and return it (JSON): the line's text
    (answer,) = json.loads(
        json.dumps(handler({"inputs": base64.b64encode(buffer.getvalue()).decode(), "parameters": {}}))
    )
    assert answer["generated_text"] == CLEAR_LINES[0][1] and isinstance(answer["confidence"], float)
    many = handler({"inputs": [image, image]})
    assert len(many) == 2 and many[0]["generated_text"] == many[1]["generated_text"]


def test_clear_lines_in_unseen_fonts_are_read_offline(tmp_path: Path) -> None:
    files = []
    for index, (family, text) in enumerate(CLEAR_LINES):
        path = tmp_path / f"{index}.png"
        _clear_line(family, text).save(path)
        files.append(str(path))
    env = {
        "INKWELL_DATA_DIR": str(tmp_path / "var"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "inkwell_cli", "recognize", "--lines", "--json", *files],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    read = [json.loads(line)["text"] for line in result.stdout.splitlines()]
    pairs = list(zip(read, [text for _, text in CLEAR_LINES], strict=True))
    cer = character_error_rate(pairs)
    exact = sum(got == want for got, want in pairs) / len(pairs)
    misread = [(want, got) for got, want in pairs if got != want]
    print(
        f"\nclear lines in {len(LEGACY_HELDOUT_FAMILIES)} unseen fonts: CER {cer:.3f}, read exactly {exact:.0%}, "
        f"misread {misread}"
    )
    assert cer <= MAX_CLEAR_CER
    assert exact >= MIN_EXACT_SHARE
