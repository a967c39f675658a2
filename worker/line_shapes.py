"""A small convolutional network over a line's upright ink: how handwritten its letter shapes look.

The hand-built features of ``worker/text_type.py`` measure a line as a whole (stroke directions,
ink profile, stroke width, slant). They cannot see what tells a print-like hand from type at the
scale of letters: a face draws every "e" the same way, with the same joins and terminals, while
a hand varies. This network looks at the letters themselves. Its output (a logit, P(handwritten))
is one more feature of the text-type classifier, which sets it against the page's other lines.

The input is the line's ink mask (as the other features use), cropped to its ink, scaled to
``HEIGHT`` pixels and at most ``MAX_WIDTH`` wide: colour, resolution and page position do not
enter. About 19,000 weights; a page's lines take tens of milliseconds of CPU (about 50 ms of the
line finder's 1.48 s a page, README "Line finding").

It runs here in NumPy, so the pages worker that finds lines never loads PyTorch (a few hundred
MB per process for a network this size); it is fitted with PyTorch by ``worker/line_shapes_fit.py``,
which gives the same weights to ``ShapeNetwork``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from safetensors.numpy import load_file, save_file

HEIGHT = 32
MAX_WIDTH = 640
POOLING = 8  # the network halves the width three times
LOGIT_LIMIT = 12.0  # the feature is the logit clipped to this: a sure answer's size says no more


def prepare(upright_ink: np.ndarray) -> np.ndarray:
    """The network's input for one line: its ink (non-zero = ink) cropped, scaled to ``HEIGHT``, 0-1."""
    mask = (upright_ink > 0).astype(np.uint8)
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.zeros((HEIGHT, POOLING), np.float32)
    mask = mask[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    width = int(min(MAX_WIDTH, max(POOLING, round(mask.shape[1] * HEIGHT / mask.shape[0]))))
    return cv2.resize(mask * 255, (width, HEIGHT), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


# The fitted module's layer names (line_shapes_fit.LineShapeNet's nn.Sequential indices: a
# convolution, its ReLU and a pooling each); tests/test_text_type.py loads one into the other.
CONVOLUTIONS = ("features.0", "features.3", "features.6", "features.9")
HEAD = "head"


class ShapeNetwork:
    """The fitted network's weights, and its forward pass: four 3x3 convolutions with ReLU (a 2x2
    maximum pooling after each of the first three), the maximum up each column, then the mean and
    the maximum along the line's width into one linear logit."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        expected = [f"{layer}.{part}" for layer in (*CONVOLUTIONS, HEAD) for part in ("weight", "bias")]
        missing = [name for name in expected if name not in weights]
        if missing:
            raise ValueError(f"the shape network lacks {', '.join(missing)}")
        self.weights = {name: np.asarray(value, np.float32) for name, value in weights.items()}

    def forward(self, images: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """Logits (N,) for ``images`` (N, HEIGHT, W; zero beyond each line's ``widths``)."""
        maps = images[..., None]  # channels last: N x H x W x C
        # Each line's maps are cut to its own padded width after every layer, so it gets the logit
        # it gets alone, whatever the widest line of its batch (past a line's end a convolution
        # leaves ReLU(bias), not zeros, which the next layer would take in).
        padded_widths = padded_width(widths)
        for index, layer in enumerate(CONVOLUTIONS):
            maps = _convolution_relu(maps, self.weights[f"{layer}.weight"], self.weights[f"{layer}.bias"])
            scale = 2**index
            maps *= (np.arange(maps.shape[2])[None, :] < (padded_widths // scale)[:, None])[:, None, :, None]
            if index < len(CONVOLUTIONS) - 1:
                maps = _max_pool(maps)
        columns = maps.max(axis=1)  # N x W/POOLING x C: the strongest response up each column
        inside = np.arange(columns.shape[1])[None, :] < np.maximum(widths // POOLING, 1)[:, None]
        mean = (columns * inside[..., None]).sum(axis=1) / inside.sum(axis=1, keepdims=True).astype(np.float32)
        peak = np.where(inside[..., None], columns, -np.inf).max(axis=1)
        pooled = np.concatenate([mean, peak], axis=1)
        return pooled @ self.weights[f"{HEAD}.weight"][0] + self.weights[f"{HEAD}.bias"][0]


def _convolution_relu(maps: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A 3x3 convolution with one pixel of zero padding (``weight``: out x in x 3 x 3), then ReLU.

    As one matrix product over the nine shifted copies of the maps (faster here than a product
    over a strided window view, which NumPy copies anyway, and than nine products summed)."""
    n, h, w, c = maps.shape
    padded = np.pad(maps, ((0, 0), (1, 1), (1, 1), (0, 0)))
    shifted = np.empty((n, h, w, 3, 3, c), np.float32)
    for dy in range(3):
        for dx in range(3):
            shifted[:, :, :, dy, dx, :] = padded[:, dy : dy + h, dx : dx + w, :]
    out = shifted.reshape(-1, 9 * c) @ weight.transpose(2, 3, 1, 0).reshape(9 * c, -1)
    out += bias
    return np.maximum(out, 0, out=out).reshape(n, h, w, -1)


def _max_pool(maps: np.ndarray) -> np.ndarray:
    """2x2 maximum pooling (an odd last row or column is dropped, as PyTorch's MaxPool2d(2) does)."""
    n, h, w, _ = maps.shape
    maps = maps[:, : h - h % 2, : w - w % 2]
    return np.maximum(
        np.maximum(maps[:, 0::2, 0::2], maps[:, 0::2, 1::2]), np.maximum(maps[:, 1::2, 0::2], maps[:, 1::2, 1::2])
    )


def padded_width(width):  # noqa: ANN001, ANN201 - an int, or NumPy or PyTorch integers (as given)
    """``width`` rounded up to a multiple of ``POOLING``: the width a line is padded to."""
    return -(-width // POOLING) * POOLING


def batch(lines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Prepared lines padded to one width (a multiple of ``POOLING``), and their widths."""
    width = padded_width(max(line.shape[1] for line in lines))
    images = np.zeros((len(lines), HEIGHT, width), np.float32)
    for i, line in enumerate(lines):
        images[i, :, : line.shape[1]] = line
    return images, np.array([line.shape[1] for line in lines])


def logits(net: ShapeNetwork, lines: list[np.ndarray], batch_size: int = 8) -> np.ndarray:
    """The network's clipped logit, P(handwritten), for each prepared line (see ``prepare``)."""
    if not lines:
        return np.zeros(0, np.float32)
    # similar widths together, in small batches: little padding (a page's labels are short, its
    # values long), and the NumPy products are as fast in batches of 8 as in larger ones
    order = np.argsort([line.shape[1] for line in lines])
    out = np.zeros(len(lines), np.float32)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        out[chosen] = net.forward(*batch([lines[i] for i in chosen]))
    return np.clip(out, -LOGIT_LIMIT, LOGIT_LIMIT)


def with_logits(net: ShapeNetwork, features: np.ndarray, lines: list[np.ndarray]) -> np.ndarray:
    """``features`` (lines x columns) with the network's logit for each prepared line as one more column."""
    return np.concatenate([features, logits(net, lines)[:, None]], axis=1).astype(np.float32)


def load(path: Path) -> ShapeNetwork:
    """A network saved by ``save``."""
    return ShapeNetwork(load_file(str(path)))


def save(net: ShapeNetwork, path: Path) -> None:
    """The weights as safetensors (the names of the PyTorch module they were fitted in)."""
    save_file({name: np.ascontiguousarray(value) for name, value in net.weights.items()}, str(path))
