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
"""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

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


class LineShapeNet(nn.Module):
    """Four small convolutions, then the mean and maximum over the line's width, then one logit."""

    def __init__(self) -> None:
        super().__init__()

        def block(inputs: int, outputs: int) -> list[nn.Module]:
            return [nn.Conv2d(inputs, outputs, 3, padding=1), nn.ReLU()]

        self.features = nn.Sequential(
            *block(1, 12),
            nn.MaxPool2d(2),
            *block(12, 24),
            nn.MaxPool2d(2),
            *block(24, 32),
            nn.MaxPool2d(2),
            *block(32, 32),
        )
        self.head = nn.Linear(2 * 32, 1)

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        """Logits (N,) for ``images`` (N, 1, HEIGHT, W; zero beyond each line's ``widths``)."""
        maps = self.features(images).amax(dim=2)  # (N, C, W / POOLING): the strongest response up each column
        columns = torch.arange(maps.shape[-1], device=maps.device)
        inside = (columns[None, :] < torch.clamp(torch.div(widths, POOLING, rounding_mode="floor"), min=1)[:, None])[
            :, None, :
        ]
        mean = (maps * inside).sum(-1) / inside.sum(-1)
        peak = maps.masked_fill(~inside, float("-inf")).amax(-1)
        return self.head(torch.cat([mean, peak], dim=1)).squeeze(1)


def _batch(lines: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Prepared lines padded to one width (a multiple of ``POOLING``), and their widths."""
    width = -(-max(line.shape[1] for line in lines) // POOLING) * POOLING
    images = np.zeros((len(lines), 1, HEIGHT, width), np.float32)
    for i, line in enumerate(lines):
        images[i, 0, :, : line.shape[1]] = line
    return torch.from_numpy(images), torch.tensor([line.shape[1] for line in lines])


def logits(net: LineShapeNet, lines: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """The network's clipped logit, P(handwritten), for each prepared line (see ``prepare``)."""
    if not lines:
        return np.zeros(0, np.float32)
    net.eval()
    order = np.argsort([line.shape[1] for line in lines])  # similar widths together: less padding
    out = np.zeros(len(lines), np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            images, widths = _batch([lines[i] for i in chosen])
            out[chosen] = net(images, widths).numpy()
    return np.clip(out, -LOGIT_LIMIT, LOGIT_LIMIT)


def with_logits(net: LineShapeNet, features: np.ndarray, lines: list[np.ndarray]) -> np.ndarray:
    """``features`` (lines x columns) with the network's logit for each prepared line as one more column."""
    return np.concatenate([features, logits(net, lines)[:, None]], axis=1).astype(np.float32)


def load(path: Path) -> LineShapeNet:
    """A network saved by ``save``."""
    net = LineShapeNet()
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def save(net: LineShapeNet, path: Path) -> None:
    save_file({key: value.contiguous() for key, value in net.state_dict().items()}, str(path))


def _stretched(line: np.ndarray, rng: random.Random) -> np.ndarray:
    """``line`` a little narrower or wider (hands and faces vary in width; the letters' shapes matter)."""
    width = int(min(MAX_WIDTH, max(POOLING, round(line.shape[1] * rng.uniform(0.8, 1.25)))))
    return cv2.resize(line, (width, HEIGHT), interpolation=cv2.INTER_AREA)


def fit(lines: list[np.ndarray], handwritten: np.ndarray, epochs: int = 8, seed: int = 0) -> LineShapeNet:
    """Fit on prepared lines and their truth (1 handwritten, 0 printed) by AdamW on the log loss."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    net = LineShapeNet()
    optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * -(-len(lines) // 32)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps)
    truth = torch.tensor(handwritten, dtype=torch.float32)
    # batches of similar widths: sort by width, cut into batches, shuffle the batches
    by_width = np.argsort([line.shape[1] for line in lines], kind="stable")
    net.train()
    for _ in range(epochs):
        batches = [list(by_width[i : i + 32]) for i in range(0, len(by_width), 32)]
        rng.shuffle(batches)
        for chosen in batches:
            images, widths = _batch([_stretched(lines[i], rng) for i in chosen])
            loss = nn.functional.binary_cross_entropy_with_logits(net(images, widths), truth[chosen])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return net.eval()
