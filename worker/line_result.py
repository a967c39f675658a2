"""What reading a line gives: plain dataclasses (NumPy, no torch), shared by the recognizer and the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class RecognitionError(RuntimeError):
    """The model gave a different number of results than lines it was given."""


@dataclass(frozen=True)
class TokenResult:
    """One generated token: its text piece and the model's probability for it."""

    text: str
    confidence: float


@dataclass
class LineResult:
    """What the model read in one line image.

    ``attention`` is ``tokens x grid_h x grid_w`` float32: for each generated token, the chosen
    decoder layer's cross-attention (mean over heads) over the encoder patches that cover the
    line image, each row summing to 1; stretched over the line image it shows where the model
    looked. ``embedding`` is the L2-normalised mean of the encoder's patch states: of its final
    output, or of the hidden layer the recognizer's ``embedding_layer`` names (see worker.features).
    """

    text: str
    confidence: float
    tokens: list[TokenResult] = field(default_factory=list)
    attention: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))
    embedding: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    signals: dict[str, float] = field(default_factory=dict)  # what the confidence was computed from


def checked_results(results: list[LineResult], lines: int) -> list[LineResult]:
    """``results`` when there is one per line; a miscount raises rather than shift texts onto other lines."""
    if len(results) != lines:
        raise RecognitionError(f"the model gave {len(results)} results for {lines} lines")
    return results
