"""The encoder's features at any depth: ``Recognizer.features`` against the plain transformers
model's ``output_hidden_states``, the embedding layer setting, and ``inkwell features``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoImageProcessor, VisionEncoderDecoderModel

from tests.images import line_png
from tests.tiny_models import TEXTS, render_text_line
from worker.recognizer import Recognizer


@pytest.fixture(scope="module", params=["char", "bpe"])
def folder(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(f"tiny_{request.param}_model")


def _lines() -> list:
    return [render_text_line(text) for text in TEXTS]


def _plain_hidden_states(folder: Path, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The reference: a separately loaded model, run the way its model card would."""
    model = VisionEncoderDecoderModel.from_pretrained(folder).eval()
    with torch.no_grad():
        return model.encoder(pixel_values=pixel_values, output_hidden_states=True).hidden_states


def test_features_match_output_hidden_states(folder: Path) -> None:
    recognizer = Recognizer.load(folder, device="cpu", batch_size=3)  # several batches: order must survive
    images = _lines()
    pixel_values, _ = recognizer.pixel_values(images)
    hidden = _plain_hidden_states(folder, pixel_values)
    prefix = 2 if recognizer.model.config.encoder.model_type == "deit" else 1
    rows, cols = recognizer.grid.rows, recognizer.grid.cols
    assert len(hidden) == recognizer.model.config.encoder.num_hidden_layers + 1
    for pool in ("mean", "cls", "none"):
        found = recognizer.features(images, layers=[0, 1, -1], pool=pool)
        assert set(found) == {0, 1, -1}
        for layer, index in ((0, 0), (1, 1), (-1, len(hidden) - 1)):
            states = hidden[index]
            expected = {
                "mean": states[:, prefix:].mean(dim=1),
                "cls": states[:, 0],
                "none": states[:, prefix:].reshape(len(images), rows, cols, -1),
            }[pool].numpy()
            assert found[layer].dtype == np.float32 and found[layer].shape == expected.shape
            np.testing.assert_allclose(found[layer], expected, atol=1e-5, rtol=1e-4)
    # different layers really differ (the index is not ignored)
    means = recognizer.features(images, layers=[0, 2])
    assert not np.allclose(means[0], means[2])


def test_squash_resize_models_take_the_processor_input(tiny_bpe_model: Path) -> None:
    """For a checkpoint without fit-pad, the input is exactly what its own image processor makes."""
    recognizer = Recognizer.load(tiny_bpe_model, device="cpu")
    images = _lines()
    pixel_values = AutoImageProcessor.from_pretrained(tiny_bpe_model)(images=images, return_tensors="pt").pixel_values
    expected = _plain_hidden_states(tiny_bpe_model, pixel_values)[1][:, 0].numpy()
    np.testing.assert_allclose(recognizer.features(images, layers=[1], pool="cls")[1], expected, atol=1e-5, rtol=1e-4)


def test_bad_layers_and_pools_are_refused(tiny_char_model: Path) -> None:
    recognizer = Recognizer.load(tiny_char_model, device="cpu")
    for layer in (3, -4):  # two blocks: layers 0..2, or -1..-3
        with pytest.raises(ValueError, match="layers 0..2"):
            recognizer.features(_lines()[:1], layers=[layer])
    with pytest.raises(ValueError, match="pool"):
        recognizer.features(_lines()[:1], layers=[1], pool="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="layers 0..2"):
        Recognizer.load(tiny_char_model, device="cpu", embedding_layer=7)
    assert recognizer.features([], layers=[1])[1].shape == (0, 64)


def test_the_embedding_layer_chooses_what_is_stored(tiny_char_model: Path) -> None:
    images = _lines()
    default = Recognizer.load(tiny_char_model, device="cpu")
    at_one = Recognizer.load(tiny_char_model, device="cpu", embedding_layer=1)
    at_last = Recognizer.load(tiny_char_model, device="cpu", embedding_layer=-1)
    assert (default.embedding_layer, at_one.embedding_layer, at_last.embedding_layer) == (None, 1, 2)
    read_default, read_one = default.recognize(images), at_one.recognize(images)
    assert [r.text for r in read_one] == [r.text for r in read_default] == list(TEXTS)  # the reading is unchanged
    expected = at_one.features(images, layers=[1])[1]
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(np.stack([r.embedding for r in read_one]), expected, atol=1e-5)
    # the default stays the encoder's final output (after its layer norm), as stored before
    pixel_values, _ = default.pixel_values(images)
    with torch.no_grad():
        final = default.model.encoder(pixel_values=pixel_values).last_hidden_state[:, 1:].mean(dim=1)
    np.testing.assert_allclose(
        np.stack([r.embedding for r in read_default]), torch.nn.functional.normalize(final, dim=-1).numpy(), atol=1e-5
    )


def _inkwell(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {"INKWELL_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "inkwell", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_the_features_command_writes_an_npz(tmp_path: Path, tiny_char_model: Path) -> None:
    files = []
    for index, text in enumerate(TEXTS[:3]):
        (tmp_path / f"{index}.png").write_bytes(line_png(text))
        files.append(str(tmp_path / f"{index}.png"))
    out = tmp_path / "features.npz"
    result = _inkwell(
        "features",
        "--lines",
        "--model",
        str(tiny_char_model),
        "--layer",
        "1",
        "--layer",
        "-1",
        "--out",
        str(out),
        *files,
        data_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr  # no progress bar when not on a terminal
    saved = np.load(out)
    assert set(saved.files) == {"layer_1", "layer_-1", "files", "pages", "bboxes"}
    assert saved["layer_1"].shape == (3, 64) and list(saved["files"]) == files and list(saved["pages"]) == [1, 1, 1]
    assert saved["bboxes"].shape == (3, 4)
    recognizer = Recognizer.load(tiny_char_model, device="cpu")
    from PIL import Image

    expected = recognizer.features([Image.open(f).convert("RGB") for f in files], layers=[1, -1])
    np.testing.assert_allclose(saved["layer_1"], expected[1], atol=1e-5)
    np.testing.assert_allclose(saved["layer_-1"], expected[-1], atol=1e-5)
    grid = _inkwell(
        "features",
        "--lines",
        "--model",
        str(tiny_char_model),
        "--layer",
        "0",
        "--pool",
        "none",
        "--out",
        str(out),
        files[0],
        data_dir=tmp_path,
    )
    assert grid.returncode == 0, grid.stderr
    assert np.load(out)["layer_0"].shape == (1, 1, 32, 64)  # one line, its 1 x 32 patch grid
    bad = _inkwell(
        "features",
        "--lines",
        "--model",
        str(tiny_char_model),
        "--layer",
        "9",
        "--out",
        str(out),
        files[0],
        data_dir=tmp_path,
    )
    assert bad.returncode == 2 and "layers 0..2" in bad.stderr
