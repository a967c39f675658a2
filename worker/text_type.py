"""Printed or handwritten: a small classifier over a few shape features of a line's ink.

The features are measured on the line's ink mask, warped upright and scaled to a fixed height,
so they do not depend on the pen's colour or the scan's resolution:

- the direction of the strokes (a 12-bin histogram of gradient orientations): type is mostly
  upright and level, hands slant and curve;
- the vertical ink profile (10 bins): type sits on a sharp baseline and x-height, hands wander;
- stroke width (mean and spread, from a distance transform): type is even;
- connected pieces per letter height of width and the spread of their heights;
- straight strokes (long vertical and horizontal runs) and how much a shear straightens them (slant);
- the line's height against the page's median line height (labels share one size);
- how handwritten the letters look to a small convolutional network (``worker/line_shapes.py``),
  where the shipped weights include one: the hand-built features see the line as a whole, the
  network sees that a face draws every letter alike;
- and each of these against the page's median line (``with_page_context``).

Two networks run one after the other. The first sees each line's features and their difference
from the page's median line. The second also sees their difference from the median of the lines
the first took for print, and from those it took for handwriting (``with_type_context``): a
form's labels share one face and size, so a small value in a print-like hand, which the first
takes for print on its own, differs from the page's labels. The second is fitted on the first's
answers for forms it was not fitted on (four folds), so it learns how far to trust them.

The weights (``worker/models/text_type.json``, and the shape network's
``text_type_shapes.safetensors``) were fitted by ``python -m scripts.train_text_type`` on
generated forms written in the training hands (never the evaluation hands) and set in printed
faces; ``python -m benchmarks.form_lines`` measures them on the evaluation forms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from worker import line_shapes

WEIGHTS = Path(__file__).resolve().parent / "models" / "text_type.json"
HEIGHT = 40  # pixels: the line's ink is scaled to this height before measuring
MAX_WIDTH = 800
PRINTED, HANDWRITTEN = "printed", "handwritten"


@dataclass(frozen=True)
class TextType:
    text_type: str  # "printed" or "handwritten"
    confidence: float  # probability of that answer, 0.5-1


def features(upright_ink: np.ndarray, page_median_height: float) -> np.ndarray:
    """The feature vector of one line from its upright ink mask (non-zero = ink)."""
    mask = (upright_ink > 0).astype(np.uint8)
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or columns.size == 0:
        return np.zeros(FEATURES, dtype=np.float32)
    mask = mask[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    ink_height = mask.shape[0]
    scale = HEIGHT / max(ink_height, 1)
    width = int(min(MAX_WIDTH, max(4, round(mask.shape[1] * scale))))
    small = cv2.resize(mask * 255, (width, HEIGHT), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0

    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # orientation, not direction
    orientation = np.histogram(angle, bins=12, range=(0, np.pi), weights=magnitude)[0]
    orientation = orientation / max(orientation.sum(), 1e-6)

    profile = small.mean(axis=1)
    profile = np.interp(np.linspace(0, HEIGHT - 1, 10), np.arange(HEIGHT), profile)
    profile = profile / max(profile.max(), 1e-6)

    binary = (small > 0.5).astype(np.uint8)
    distance = cv2.distanceTransform(binary, cv2.DIST_L2, 3)
    strokes = distance[distance > 0]
    stroke_mean = float(strokes.mean()) / HEIGHT if strokes.size else 0.0
    stroke_spread = float(strokes.std() / max(strokes.mean(), 1e-6)) if strokes.size else 0.0

    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    heights = stats[1:, cv2.CC_STAT_HEIGHT].astype(np.float32)
    heights = heights[heights >= 3]
    pieces = len(heights) / max(width / HEIGHT, 1.0)
    height_spread = float(heights.std() / max(heights.mean(), 1e-6)) if heights.size > 1 else 0.0
    ink_share = float(binary.mean())
    relative = float(np.log(max(ink_height, 1) / max(page_median_height, 1)))
    steps = np.diff(small.mean(axis=1))
    sharpness = [float(steps.max()), float(-steps.min())]  # type has a sharp baseline and x-height
    return np.concatenate(
        [
            orientation,
            profile,
            [stroke_mean, stroke_spread, pieces, height_spread, ink_share, relative],
            sharpness,
            _runs(binary),
            _slant(binary),
        ]
    ).astype(np.float32)


def _longest_runs(binary: np.ndarray) -> np.ndarray:
    """The longest vertical run of ink in each column."""
    longest = np.zeros(binary.shape[1], dtype=np.int32)
    current = np.zeros(binary.shape[1], dtype=np.int32)
    for row in binary:
        current = (current + 1) * row
        longest = np.maximum(longest, current)
    return longest


def _runs(binary: np.ndarray) -> list[float]:
    """Straight strokes: the share of inked columns whose longest vertical run reaches a fifth,
    a third and half of the height, and the same for rows' horizontal runs (bars, serifs)."""
    inked = max(int(binary.any(axis=0).sum()), 1)
    vertical = _longest_runs(binary)
    horizontal = _longest_runs(binary.T.copy())
    rows = max(int(binary.any(axis=1).sum()), 1)
    return [float((vertical >= HEIGHT * f).sum() / inked) for f in (0.2, 0.33, 0.5)] + [
        float((horizontal >= HEIGHT * f).sum() / rows) for f in (0.2, 0.4)
    ]


def _slant(binary: np.ndarray) -> list[float]:
    """How much straighter the strokes stand when the line is sheared (hands slant; type stands upright)."""
    upright = float((_longest_runs(binary) >= HEIGHT * 0.33).sum()) + 1.0
    best, best_shear = upright, 0.0
    for shear in (-0.4, -0.25, -0.12, 0.12, 0.25, 0.4):
        matrix = np.array([[1, shear, -shear * HEIGHT / 2], [0, 1, 0]], dtype=np.float32)
        sheared = cv2.warpAffine(binary, matrix, (binary.shape[1], HEIGHT), flags=cv2.INTER_NEAREST)
        count = float((_longest_runs(sheared) >= HEIGHT * 0.33).sum()) + 1.0
        if count > best:
            best, best_shear = count, shear
    return [float(np.log(best / upright)), abs(best_shear)]


FEATURES = 12 + 10 + 6 + 2 + 5 + 2


def with_page_context(base: np.ndarray) -> np.ndarray:
    """Each line's features next to their difference from the page's median line: a form's labels
    share one face and size, so how a line differs from the rest of its page says much."""
    return np.concatenate([base, base - np.median(base, axis=0)], axis=1).astype(np.float32)


def with_type_context(base: np.ndarray, handwritten: np.ndarray) -> np.ndarray:
    """``with_page_context`` and each line's difference from the median of the page's lines taken
    for print and of those taken for handwriting (P(handwritten) ``handwritten`` from the first network);
    with fewer than two lines of a kind, that kind's median is the page's."""
    page = np.median(base, axis=0)
    printed, written = base[handwritten < 0.5], base[handwritten >= 0.5]
    printed_centre = np.median(printed, axis=0) if len(printed) >= 2 else page
    written_centre = np.median(written, axis=0) if len(written) >= 2 else page
    return np.concatenate([with_page_context(base), base - printed_centre, base - written_centre], axis=1).astype(
        np.float32
    )


class TextTypeClassifier:
    """Two networks in turn over one page's lines (see the module's docstring): P(handwritten)."""

    def __init__(self, first: Network, second: Network, shapes: line_shapes.ShapeNetwork | None = None) -> None:
        self.first, self.second, self.shapes = first, second, shapes

    @classmethod
    def bundled(cls) -> TextTypeClassifier:
        """The classifier shipped with the package (``worker/models/text_type.json``)."""
        return cls.load(WEIGHTS)

    @classmethod
    def load(cls, path: Path) -> TextTypeClassifier:
        """A classifier saved by ``save`` (its shape network, if any, in the file the JSON names beside it)."""
        path = Path(path)
        data = json.loads(path.read_text())
        shapes = None
        if data.get("shapes"):
            weights = path.parent / data["shapes"]
            if not weights.exists():
                raise FileNotFoundError(f"{path} names its shape network {weights.name}, which is not beside it")
            shapes = line_shapes.load(weights)
        return cls(Network.from_json(data["first"]), Network.from_json(data["second"]), shapes)

    def save(self, path: Path, note: str = "") -> None:
        """The networks as JSON at ``path``; the shape network beside it (``<stem>_shapes.safetensors``)."""
        path = Path(path)
        shapes = None
        if self.shapes is not None:
            shapes = f"{path.stem}_shapes.safetensors"
            line_shapes.save(self.shapes, path.parent / shapes)
        data = {"note": note, "shapes": shapes, "first": self.first.to_json(), "second": self.second.to_json()}
        path.write_text(json.dumps(data))

    def inputs(self, hand_built: np.ndarray, regions: list[np.ndarray]) -> np.ndarray:
        """The networks' input for one page's lines: their features (``hand_built``, from ``features``)
        and, with a shape network, its logit for each line's upright ink (``regions``) as one more column."""
        if self.shapes is None:
            return hand_built
        return line_shapes.with_logits(self.shapes, hand_built, [line_shapes.prepare(region) for region in regions])

    def probability(self, base: np.ndarray) -> np.ndarray:
        """P(handwritten) for each line of one page (``base``: lines x ``inputs``, without context)."""
        first = self.first.probability(with_page_context(base))
        return self.second.probability(with_type_context(base, first))

    def classify(self, base: np.ndarray) -> list[TextType]:
        """The text type of each line of one page, with the probability of that answer."""
        return [
            TextType(HANDWRITTEN, float(p)) if p >= 0.5 else TextType(PRINTED, float(1 - p))
            for p in self.probability(base)
        ]

    @classmethod
    def fit(
        cls,
        pages: list[np.ndarray],
        handwritten: list[np.ndarray],
        folds: int = 4,
        shapes: line_shapes.ShapeNetwork | None = None,
    ) -> TextTypeClassifier:
        """Fit on whole pages (``pages[i]``: the base features of all of page i's lines, which make its
        context, with the shape logit last where ``shapes`` is given; ``handwritten[i]``: their truth,
        1 or 0, or -1 for a line with none, left out of the fit). The second network learns from the
        first's answers on pages held out of it."""

        def rows(indices: list[int], context) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001 - a function of a page index
            batch = [context(i) for i in indices]
            truth = np.concatenate([handwritten[i] for i in indices])
            return np.concatenate(batch)[truth >= 0], truth[truth >= 0] == 1

        everything = list(range(len(pages)))
        first = Network.fit(*rows(everything, lambda i: with_page_context(pages[i])))
        answers: list[np.ndarray] = [np.empty(0)] * len(pages)
        for fold in range(folds):
            network = Network.fit(
                *rows([i for i in everything if i % folds != fold], lambda i: with_page_context(pages[i]))
            )
            for i in range(fold, len(pages), folds):
                answers[i] = network.probability(with_page_context(pages[i]))
        second = Network.fit(*rows(everything, lambda i: with_type_context(pages[i], answers[i])))
        return cls(first, second, shapes)


class Network:
    """A small neural network (one hidden layer) over standardised features: P(handwritten)."""

    def __init__(
        self, mean: np.ndarray, scale: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: float
    ) -> None:
        self.mean, self.scale, self.w1, self.b1, self.w2, self.b2 = mean, scale, w1, b1, w2, b2

    @classmethod
    def from_json(cls, data: dict) -> Network:
        arrays = {key: np.array(data[key], np.float32) for key in ("mean", "scale", "w1", "b1", "w2")}
        return cls(arrays["mean"], arrays["scale"], arrays["w1"], arrays["b1"], arrays["w2"], float(data["b2"]))

    def to_json(self) -> dict:
        return {
            "features": int(self.mean.size),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "w1": np.round(self.w1, 6).tolist(),
            "b1": self.b1.tolist(),
            "w2": self.w2.tolist(),
            "b2": self.b2,
        }

    def probability(self, batch: np.ndarray) -> np.ndarray:
        """P(handwritten) for each row of ``batch`` (lines x its features)."""
        hidden = np.maximum(((batch - self.mean) / self.scale) @ self.w1 + self.b1, 0.0)
        return 1.0 / (1.0 + np.exp(-np.clip(hidden @ self.w2 + self.b2, -30, 30)))

    @classmethod
    def fit(
        cls,
        batch: np.ndarray,
        handwritten: np.ndarray,
        hidden: int = 32,
        steps: int = 3000,
        rate: float = 0.01,
        l2: float = 1e-2,
        seed: int = 0,
    ) -> Network:
        """Fit on the log loss by full-batch Adam (a few thousand lines take a minute)."""
        rng = np.random.default_rng(seed)
        mean, scale = batch.mean(axis=0), batch.std(axis=0) + 1e-6
        x, y = ((batch - mean) / scale).astype(np.float32), handwritten.astype(np.float32)
        params = [
            rng.normal(0, 1 / np.sqrt(x.shape[1]), (x.shape[1], hidden)).astype(np.float32),
            np.zeros(hidden, np.float32),
            rng.normal(0, 1 / np.sqrt(hidden), hidden).astype(np.float32),
            np.zeros(1, np.float32),
        ]
        first = [np.zeros_like(p) for p in params]
        second = [np.zeros_like(p) for p in params]
        for step in range(1, steps + 1):
            w1, b1, w2, b2 = params
            h = np.maximum(x @ w1 + b1, 0.0)
            p = 1.0 / (1.0 + np.exp(-np.clip(h @ w2 + b2[0], -30, 30)))
            error = (p - y) / len(y)
            grad_h = np.outer(error, w2) * (h > 0)
            grads = [
                x.T @ grad_h + l2 * w1,
                grad_h.sum(axis=0),
                h.T @ error + l2 * w2,
                np.array([error.sum()], np.float32),
            ]
            for i, g in enumerate(grads):
                first[i] = 0.9 * first[i] + 0.1 * g
                second[i] = 0.999 * second[i] + 0.001 * g * g
                params[i] -= rate * (first[i] / (1 - 0.9**step)) / (np.sqrt(second[i] / (1 - 0.999**step)) + 1e-8)
        w1, b1, w2, b2 = params
        return cls(mean.astype(np.float32), scale.astype(np.float32), w1, b1, w2, float(b2[0]))
