"""Character error rate, the measure every reading-quality figure in Inkwell is given in."""

from __future__ import annotations

from collections.abc import Iterable

from rapidfuzz.distance import Levenshtein


def character_errors(predicted: str, reference: str) -> int:
    """Edits (insertions, deletions, substitutions) that turn ``predicted`` into ``reference``."""
    return Levenshtein.distance(predicted, reference)


def character_error_rate(pairs: Iterable[tuple[str, str]]) -> float:
    """Total edits over total reference characters, for ``(predicted, reference)`` pairs."""
    errors = 0
    length = 0
    for predicted, reference in pairs:
        errors += character_errors(predicted, reference)
        length += len(reference)
    return errors / max(length, 1)
