"""Real handwritten lines (../shared/data/handwriting_lines_fr): loading, cleaning, writer-disjoint split."""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from training.charset import in_alphabet, normalise_text

# INKWELL_REAL_LINES_DIR points elsewhere (a machine without ../shared, e.g. a GPU bundle's reduced copy);
# read once at import, so worker processes and every default agree.
DEFAULT_REAL_DIR = Path(
    os.environ.get("INKWELL_REAL_LINES_DIR")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "handwriting_lines_fr"
)

# Collections with only ten hands each: one whole hand per collection goes to validation.
_FEW_HANDS_VALIDATION = {
    "cremma_mss_18": "le-sallon-de-1767-denis-diderot",
    "cremma_mss_19": "manuscrit-verne-20000",
}
_VALIDATION_SHARE = 10  # one group in ten, by a stable hash of its key


@dataclass(frozen=True)
class RealLine:
    """One usable real line: image path, normalised text, collection and writer/document key."""

    path: Path
    text: str
    dataset: str
    group: str


def is_validation_group(dataset: str, group: str) -> bool:
    """Writer-disjoint split: whole groups (hands or documents) go to validation, never single lines."""
    if dataset in _FEW_HANDS_VALIDATION:
        return group == _FEW_HANDS_VALIDATION[dataset]
    digest = hashlib.sha256(f"{dataset}/{group}".encode()).digest()
    return digest[0] % _VALIDATION_SHARE == 0


def load_real_lines(root: Path = DEFAULT_REAL_DIR) -> tuple[list[RealLine], list[RealLine], dict[str, int]]:
    """Return (train, validation, skipped counts by reason) following the data's README advice.

    Lines flagged ``markup`` (crossed-out, insertions, superscripts), lines of one or two
    characters (mostly folio numbers) and lines with characters outside the model's alphabet
    (combining abbreviation marks, rare symbols) are skipped rather than mangled.
    """
    manifest = _read_tsv(root / "manifest.tsv")
    meta = _read_tsv(root / "lines_meta.tsv")
    if len(manifest) != len(meta):
        raise ValueError("manifest.tsv and lines_meta.tsv disagree on the number of lines")
    train: list[RealLine] = []
    validation: list[RealLine] = []
    skipped = {"markup": 0, "short": 0, "alphabet": 0}
    for entry, info in zip(manifest, meta, strict=True):
        if entry["path"] != info["path"]:
            raise ValueError(f"row mismatch: {entry['path']} vs {info['path']}")
        text = normalise_text(entry["text"])
        if "markup" in info["flags"]:
            skipped["markup"] += 1
        elif len(text) <= 2:
            skipped["short"] += 1
        elif not in_alphabet(text):
            skipped["alphabet"] += 1
        else:
            line = RealLine(root / entry["path"], text, entry["dataset_slug"], info["group"])
            (validation if is_validation_group(line.dataset, line.group) else train).append(line)
    return train, validation, skipped


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
