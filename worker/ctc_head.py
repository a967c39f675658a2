"""The CTC head some checkpoints ship beside the decoder, and its greedy (best path) reading."""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from worker.checkpoint import MANIFEST, checkpoint_file


def ctc_greedy_ids(log_probs: torch.Tensor, blank_id: int) -> list[list[int]]:
    """Each row's greedy CTC reading as token ids: best label per frame, repeats merged, blanks dropped.

    ``log_probs`` is ``batch x frames x vocabulary``. Vectorised but for the final split per row:
    it runs for every batch the recognizer encodes.
    """
    best = log_probs.argmax(dim=-1)
    new = torch.ones_like(best, dtype=torch.bool)
    new[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = (best != blank_id) & new
    return [row[mask].tolist() for row, mask in zip(best, keep, strict=True)]


def ctc_greedy_lengths(log_probs: torch.Tensor, blank_id: int) -> list[int]:
    """Tokens in each row's greedy CTC reading (see ctc_greedy_ids)."""
    return [len(ids) for ids in ctc_greedy_ids(log_probs, blank_id)]


@dataclass
class CTCHead:
    """A linear CTC head over the encoder's patches, shipped beside some checkpoints for joint decoding."""

    projection: torch.nn.Linear
    blank_id: int
    weight: float

    @classmethod
    def load(cls, source: str, device: torch.device, weight: float | None) -> CTCHead | None:
        """The head declared in the checkpoint's ``inkwell.json``, or None (none, or ``weight == 0``)."""
        manifest = checkpoint_file(source, MANIFEST)
        if manifest is None or weight == 0:
            return None
        declared = json.loads(manifest.read_text()).get("ctc_head")
        if not declared:
            return None
        weights_file = checkpoint_file(source, declared["file"])
        if weights_file is None:
            raise FileNotFoundError(f"{source}: {declared['file']} is declared in {MANIFEST} but missing")
        from safetensors.torch import load_file

        tensors = load_file(str(weights_file))
        projection = torch.nn.Linear(tensors["weight"].shape[1], tensors["weight"].shape[0])
        projection.load_state_dict(tensors)
        projection.to(device, torch.float32).eval()
        return cls(projection, int(declared["blank_id"]), float(declared["weight"] if weight is None else weight))

    def log_probs(self, patch_states: torch.Tensor) -> torch.Tensor:
        """batch x patches x vocabulary log-probabilities (on the CPU, where the prefix scorer runs)."""
        return torch.log_softmax(self.projection(patch_states.float()), dim=-1).cpu()
