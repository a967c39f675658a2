"""Fitting the line-shape network (``worker/line_shapes.py``) with PyTorch.

Only ``scripts/train_text_type.py`` and the tests fit it; the line finder runs the fitted weights
in NumPy (``line_shapes.ShapeNetwork``), so workers that find lines never import PyTorch.
"""

from __future__ import annotations

import random

import cv2
import numpy as np
import torch
from torch import nn

from worker.line_shapes import HEIGHT, MAX_WIDTH, POOLING, ShapeNetwork, batch, padded_width


class LineShapeNet(nn.Module):
    """The network ``ShapeNetwork`` runs, as a module to fit: its layer names are the weights' names,
    and each line's logit is the one it gets alone, whatever else is in its batch."""

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
        padded_widths = padded_width(widths)
        maps, scale = images, 1
        for layer in self.features:
            maps = layer(maps)
            if isinstance(layer, nn.MaxPool2d):
                scale *= 2
            elif isinstance(layer, nn.ReLU):  # each line cut to its own width, as ShapeNetwork does
                columns = torch.arange(maps.shape[-1], device=maps.device)
                maps = (
                    maps
                    * (columns[None, :] < torch.div(padded_widths, scale, rounding_mode="floor")[:, None])[
                        :, None, None, :
                    ]
                )
        maps = maps.amax(dim=2)  # (N, C, W / POOLING): the strongest response up each column
        columns = torch.arange(maps.shape[-1], device=maps.device)
        limits = torch.clamp(torch.div(widths, POOLING, rounding_mode="floor"), min=1)
        inside = (columns[None, :] < limits[:, None])[:, None, :]
        mean = (maps * inside).sum(-1) / inside.sum(-1)
        peak = maps.masked_fill(~inside, float("-inf")).amax(-1)
        return self.head(torch.cat([mean, peak], dim=1)).squeeze(1)

    def exported(self) -> ShapeNetwork:
        """The weights, for the NumPy network the line finder runs."""
        return ShapeNetwork({name: value.detach().cpu().numpy().copy() for name, value in self.state_dict().items()})


def _tensors(lines: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    images, widths = batch(lines)
    return torch.from_numpy(images)[:, None], torch.from_numpy(widths)


def _stretched(line: np.ndarray, rng: random.Random) -> np.ndarray:
    """``line`` a little narrower or wider (hands and faces vary in width; the letters' shapes matter)."""
    width = int(min(MAX_WIDTH, max(POOLING, round(line.shape[1] * rng.uniform(0.8, 1.25)))))
    return cv2.resize(line, (width, HEIGHT), interpolation=cv2.INTER_AREA)


def fit(lines: list[np.ndarray], handwritten: np.ndarray, epochs: int = 8, seed: int = 0) -> ShapeNetwork:
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
            images, widths = _tensors([_stretched(lines[i], rng) for i in chosen])
            loss = nn.functional.binary_cross_entropy_with_logits(net(images, widths), truth[chosen])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return net.eval().exported()
