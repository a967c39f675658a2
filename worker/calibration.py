"""Confidence a reviewer can trust: temperature-scaled token probabilities and a fitted line model.

A decoder's raw probabilities are over-confident on hands it never saw: the geometric mean of a
line's token probabilities stayed above 0.8 on a third of the wrongly read lines of unseen forms.
A checkpoint's ``inkwell.json`` may declare a ``calibration``, fitted on held-out validation lines
(``python -m training calibrate``):

- ``temperature`` divides the decoder's logits before the softmax, so that token confidences
  match how often tokens are right (fitted by minimising the truth's negative log-likelihood);
- ``line`` is a logistic model over a few signals of each line (below) giving the probability
  that the whole line is read exactly; its bias is set so that, on the fitting lines, a chosen
  share of the lines with an error fall below the review threshold.

Without a declared calibration, line confidence is the geometric mean of token probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

SIGNALS = ("mean_log_prob", "min_log_prob", "ctc_agreement", "log_length")


def line_signals(token_probs: Sequence[float], text: str, ctc_text: str | None) -> dict[str, float]:
    """What a line's reading says about its own reliability.

    ``ctc_agreement`` is 1 minus the normalised edit distance between the decoder's text and the
    CTC head's greedy reading (two readers that agree are seldom both wrong); 1 without a head.
    """
    logs = [math.log(max(p, 1e-12)) for p in token_probs] or [0.0]
    agreement = 1.0 if ctc_text is None else 1.0 - Levenshtein.normalized_distance(text, ctc_text)
    return {
        "mean_log_prob": sum(logs) / len(logs),
        "min_log_prob": min(logs),
        "ctc_agreement": agreement,
        "log_length": math.log1p(len(text)),
    }


def geometric_mean(token_probs: Sequence[float]) -> float:
    """The uncalibrated line confidence: geometric mean of the token probabilities."""
    if not token_probs:
        return 0.0
    return math.exp(sum(math.log(max(p, 1e-12)) for p in token_probs) / len(token_probs))


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and line model, as declared in a checkpoint's ``inkwell.json``."""

    temperature: float = 1.0
    weights: tuple[float, ...] | None = None  # one per SIGNALS entry; None: geometric mean
    bias: float = 0.0

    def line_confidence(self, signals: dict[str, float], token_probs: Sequence[float]) -> float:
        """Probability that the line is read exactly (or the geometric mean, without a line model)."""
        if self.weights is None:
            return geometric_mean(token_probs)
        score = self.bias + sum(w * signals[name] for w, name in zip(self.weights, SIGNALS))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, score))))

    def as_manifest(self) -> dict:
        """The ``calibration`` entry of ``inkwell.json``."""
        entry: dict = {"temperature": self.temperature}
        if self.weights is not None:
            entry["line"] = {"signals": list(SIGNALS), "weights": list(self.weights), "bias": self.bias}
        return entry

    @classmethod
    def from_manifest(cls, entry: dict | None) -> Calibration | None:
        """Read the ``calibration`` entry; None when the checkpoint declares none."""
        if not entry:
            return None
        line = entry.get("line")
        if line is not None and list(line["signals"]) != list(SIGNALS):
            raise ValueError(
                f"calibration signals {line['signals']} are not the ones this version computes {list(SIGNALS)}"
            )
        return cls(
            temperature=float(entry.get("temperature", 1.0)),
            weights=tuple(float(w) for w in line["weights"]) if line else None,
            bias=float(line["bias"]) if line else 0.0,
        )


def fit_line_model(
    signals: Sequence[dict[str, float]], exact: Sequence[bool], threshold: float, flag_share: float, steps: int = 3000
) -> tuple[tuple[float, ...], float]:
    """Logistic regression of "read exactly" on the signals, then its bias set so that
    ``flag_share`` of the lines with an error score below ``threshold``, and no more.

    The weights rank lines by how likely they are right; the bias places the review threshold
    on that ranking where the wanted share of erroneous lines falls under it, which flags as few
    exactly read lines as this ranking allows (a plain fit would put most lines under 0.8 where
    most lines have an error, as on unseen hands).

    Plain gradient descent on standardised inputs (a few thousand lines, four inputs: no library
    needed beyond numpy); the weights are mapped back to raw signal units.
    """
    import numpy as np

    x = np.array([[s[name] for name in SIGNALS] for s in signals], dtype=np.float64)
    y = np.array(exact, dtype=np.float64)
    if len(x) == 0 or y.min() == y.max():
        raise ValueError("calibration needs lines read exactly and lines read with errors")
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    w = np.zeros(z.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad = p - y
        w -= 0.5 * (z.T @ grad / len(y) + 1e-3 * w)
        b -= 0.5 * grad.mean()
    raw_w = w / std
    scores = x @ raw_w
    wrong = np.sort(scores[y == 0])
    index = min(len(wrong) - 1, max(0, math.ceil(flag_share * len(wrong)) - 1))
    logit_threshold = math.log(threshold / (1 - threshold))
    return tuple(float(v) for v in raw_w), logit_threshold - float(wrong[index]) - 1e-6


def review_shares(confidences: Sequence[float], exact: Sequence[bool], threshold: float) -> tuple[float, float]:
    """(share of lines with an error flagged, share of exactly read lines flagged) at ``threshold``."""
    wrong = [c for c, ok in zip(confidences, exact) if not ok]
    right = [c for c, ok in zip(confidences, exact) if ok]
    flagged_wrong = sum(c < threshold for c in wrong) / len(wrong) if wrong else 1.0
    flagged_right = sum(c < threshold for c in right) / len(right) if right else 0.0
    return flagged_wrong, flagged_right
