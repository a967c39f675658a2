"""English prose cut into line-length pieces, so the decoder learns English words and spelling.

The texts are the public-domain books of ../shared/data/english_text (one paragraph a line).
One book never feeds training: its lines are the English validation set, so that set measures
reading text the decoder has not seen, not recalling sentences it has.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

from training.charset import in_alphabet, normalise_text

# INKWELL_ENGLISH_TEXT_DIR points elsewhere (a machine without ../shared, e.g. a GPU bundle's copy).
DEFAULT_PROSE_DIR = Path(
    os.environ.get("INKWELL_ENGLISH_TEXT_DIR")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "english_text"
)
VALIDATION_BOOK = "3261.txt"  # News from Nowhere, William Morris (1890)

_ITALIC_MARKS = re.compile(r"(?<!\w)_|_(?!\w)")  # Gutenberg's _italics_ markers


def book_files(root: Path = DEFAULT_PROSE_DIR, validation: bool = False) -> list[Path]:
    """The training books, or (``validation``) the one held-out book."""
    files = sorted(root.glob("*.txt"))
    return [f for f in files if (f.name == VALIDATION_BOOK) == validation]


def clean_paragraph(paragraph: str) -> str:
    """Normalised text with italics markers removed and characters outside the alphabet dropped."""
    text = normalise_text(_ITALIC_MARKS.sub("", paragraph))
    return " ".join("".join(c for c in text if in_alphabet(c)).split())


def cut_into_lines(paragraph: str, rng: random.Random, min_chars: int = 12, max_chars: int = 72) -> list[str]:
    """Cut a paragraph at word boundaries into pieces of random length in [min_chars, max_chars].

    Handwritten lines break where the writer runs out of paper, not at sentences: each piece
    takes words until a randomly drawn length is reached. A word longer than ``max_chars`` is
    cut (it would not fit a line either); a short tail is kept if it has at least 3 characters.
    """
    words = paragraph.split()
    pieces: list[str] = []
    current: list[str] = []
    target = rng.randint(min_chars, max_chars)
    length = 0
    for word in words:
        word = word[:max_chars]
        added = len(word) + (1 if current else 0)
        if current and (length + added > max_chars or (length + added > target and length >= min_chars)):
            pieces.append(" ".join(current))
            current, length, target = [], 0, rng.randint(min_chars, max_chars)
            added = len(word)
        current.append(word)
        length += added
    if current and length >= 3:
        pieces.append(" ".join(current))
    return pieces


class ProseLines:
    """An endless, seeded stream of line-length English pieces from the training (or validation) books."""

    def __init__(self, seed: int, root: Path = DEFAULT_PROSE_DIR, validation: bool = False) -> None:
        self.rng = random.Random(seed)
        self.paragraphs = [
            text
            for path in book_files(root, validation)
            for raw in path.read_text(encoding="utf-8").splitlines()
            if len(text := clean_paragraph(raw)) >= 3
        ]
        if not self.paragraphs:
            raise FileNotFoundError(f"no English prose under {root}")
        self._pending: list[str] = []

    def line(self) -> str:
        """The next piece: consecutive pieces of one randomly chosen paragraph, then another."""
        while not self._pending:
            self._pending = cut_into_lines(self.rng.choice(self.paragraphs), self.rng)
        return self._pending.pop(0)

    def __iter__(self) -> Iterator[str]:
        while True:
            yield self.line()
