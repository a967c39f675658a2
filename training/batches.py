"""Turn shards into padded model batches: pixel tensors, decoder labels and CTC targets."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.charset import EOS_ID
from training.shards import Shard, finished_shards, load_shard
from worker.line_image import pad_line

IGNORE_INDEX = -100


@dataclass
class Batch:
    # B x 1 x H x W float32 as drawn; B x 3 x H x W after ``to``. The model's three channels are
    # the same grey, so they are made on the device: a third of the bytes to copy there, and no
    # copy on the CPU (on a GPU the CPU's batch assembly, not the GPU, set the pace of a step).
    pixel_values: torch.Tensor
    labels: torch.Tensor  # B x L token ids ending in EOS, padded with IGNORE_INDEX
    texts: list[str]

    def to(self, device: torch.device) -> Batch:
        """The same batch on ``device``, its pixels as the model's three channels (a view)."""
        pixels = self.pixel_values.to(device).expand(-1, 3, -1, -1)
        return Batch(pixels, self.labels.to(device), self.texts)


class Encoder:
    """Characters -> token ids, straight from the tokenizer's vocabulary (no per-call overhead)."""

    def __init__(self, vocab: dict[str, int], max_tokens: int) -> None:
        self.vocab = vocab
        self.max_tokens = max_tokens

    def ids(self, text: str) -> list[int] | None:
        if len(text) + 1 > self.max_tokens:
            return None
        try:
            return [self.vocab[c] for c in text] + [EOS_ID]
        except KeyError:
            return None


def make_batch(images: list[np.ndarray], texts: list[str], encoder: Encoder, height: int, width: int) -> Batch:
    """Pad images into the model box (the recognizer's exact padding) and labels to a rectangle."""
    pixels = np.stack([pad_line(image, height, width, "mean") for image in images])  # B x 1 x H x W
    ids = [encoder.ids(t) or [EOS_ID] for t in texts]
    labels = np.full((len(ids), max(map(len, ids))), IGNORE_INDEX, dtype=np.int64)
    for row, token_ids in enumerate(ids):
        labels[row, : len(token_ids)] = token_ids
    return Batch(torch.from_numpy(pixels), torch.from_numpy(labels), texts)


class MixedSampler:
    """Random training batches, ``real_share`` of each from real lines, the rest synthetic.

    New synthetic shards written while training runs are picked up by :meth:`refresh`.
    """

    def __init__(self, shards_dir: Path, encoder: Encoder, real_share: float, seed: int) -> None:
        self.shards_dir = shards_dir
        self.encoder = encoder
        self.real_share = real_share
        self.rng = random.Random(seed)
        self.synthetic: list[Shard] = []
        self.real: list[Shard] = []
        self._loaded: set[str] = set()
        self.refresh()

    def refresh(self) -> None:
        for prefix, target in (("synth", self.synthetic), ("real", self.real)):
            for folder in finished_shards(self.shards_dir, prefix):
                if folder.name not in self._loaded:
                    target.append(load_shard(folder))
                    self._loaded.add(folder.name)
        if not self.synthetic:
            raise FileNotFoundError(f"no synthetic shards under {self.shards_dir}: run `python -m training data`")

    @property
    def synthetic_lines(self) -> int:
        return sum(len(s) for s in self.synthetic)

    def _draw(self, pool: list[Shard], max_chars: int) -> tuple[np.ndarray, str]:
        while True:
            shard = self.rng.choice(pool)
            index = self.rng.randrange(len(shard))
            text = shard.texts[index]
            if len(text) <= max_chars and self.encoder.ids(text) is not None:
                return shard.image(index), text

    def batch(self, size: int, height: int, width: int, progress: float = 1.0) -> Batch:
        """A random batch; early in training (``progress`` < 0.1) a curriculum of short lines.

        Alignment is what a model trained from scratch learns slowest; short lines make it
        easy to find, so synthetic lines start at 12 characters at most and the limit grows
        until it is gone at 10% of the schedule, while real (long, hard) lines are phased in.
        """
        ramp = min(1.0, progress / 0.1)
        max_chars = 12 + int(ramp * 200) if ramp < 1 else 10_000
        real_share = self.real_share * min(1.0, max(0.0, (progress - 0.03) / 0.07))
        real_count = sum(self.rng.random() < real_share for _ in range(size)) if self.real else 0
        drawn = [self._draw(self.real, 10_000) for _ in range(real_count)]
        drawn += [self._draw(self.synthetic, max_chars) for _ in range(size - real_count)]
        images, texts = zip(*drawn, strict=True)
        return make_batch(list(images), list(texts), self.encoder, height, width)


def validation_batches(shard: Shard, encoder: Encoder, size: int, height: int, width: int, limit: int = 0):
    """The whole validation shard (or its first ``limit`` lines) in order, in batches of ``size``."""
    count = len(shard) if not limit else min(limit, len(shard))
    for start in range(0, count, size):
        indices = range(start, min(count, start + size))
        yield make_batch([shard.image(i) for i in indices], [shard.texts[i] for i in indices], encoder, height, width)
