"""Joint CTC/attention decoding: the vectorised CTC prefix scores against the textbook recursion,
and the decoder's choice overruled where the CTC evidence is strong."""

from __future__ import annotations

import itertools
import math

import torch

from worker.ctc_prefix import NEG, CTCPrefixScorer

BLANK, EOS = 0, 1


def _collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    out, previous = [], None
    for token in path:
        if token != previous and token != BLANK:
            out.append(token)
        previous = token
    return tuple(out)


def _prefix_probability(x: torch.Tensor, prefix: tuple[int, ...]) -> float:
    """Sum over every CTC path whose collapse starts with ``prefix`` (brute force, tiny sizes only)."""
    frames, vocabulary = x.shape
    total = 0.0
    for path in itertools.product(range(vocabulary), repeat=frames):
        if EOS in path:
            continue
        if _collapse(path)[: len(prefix)] == prefix:
            total += math.exp(sum(float(x[t, token]) for t, token in enumerate(path)))
    return total


def test_prefix_scores_match_the_sum_over_paths() -> None:
    torch.manual_seed(0)
    x = torch.log_softmax(torch.randn(1, 5, 4), dim=-1)
    x[:, :, EOS] = -50.0  # CTC never emits the end token
    x = torch.log_softmax(x, dim=-1)
    scorer = CTCPrefixScorer(x, BLANK, EOS)
    for step, token in enumerate((2, 3, 3)):  # the prefixes (2), (2, 3), (2, 3, 3)
        psi = scorer.prefix_scores(torch.tensor([[2, 3]]))
        prefix = (2, 3, 3)[:step]
        for j, candidate in enumerate((2, 3)):
            expected = _prefix_probability(x[0], prefix + (candidate,))
            assert math.isclose(math.exp(float(psi[0, j])), expected, rel_tol=1e-4, abs_tol=1e-9)
        scorer.advance(torch.tensor([token]))


def test_strong_ctc_evidence_overrules_a_wavering_decoder() -> None:
    frames = 6
    x = torch.full((1, frames, 5), -20.0)
    for t, token in enumerate((2, BLANK, 3, BLANK, BLANK, BLANK)):  # CTC clearly reads "2 3"
        x[0, t, token] = 0.0
    x = torch.log_softmax(x, dim=-1)
    scorer = CTCPrefixScorer(x, BLANK, EOS, weight=0.5, top_k=3)
    decoded = [9]  # the decoder start token
    for attention_choice in (2, 4, 4):  # the decoder wants "2 4 4 ..."
        scores = torch.full((1, 5), -5.0)
        scores[0, attention_choice] = 0.0
        scores[0, 3] = -1.0
        scores[0, EOS] = -2.0
        out = scorer(torch.tensor([decoded]), scores)
        decoded.append(int(out.argmax()))
        if decoded[-1] == EOS:
            break
    assert decoded[1:] == [2, 3, EOS]
    assert out.min() <= NEG / 2  # tokens outside the candidates are ruled out
