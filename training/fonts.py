"""The handwriting fonts that synthetic training lines are rendered from.

Only the 44 open-licence ``@fontsource`` fonts listed in shared/DESIGN.md are used, fetched from
the npm registry with ``npm pack``. Five of them never appear in training so that the synthetic
validation set measures reading unseen hands, not memorised glyphs.
"""

from __future__ import annotations

import subprocess
import tarfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

TRAINING_FONTS = (
    "alex-brush allura amatic-sc annie-use-your-telescope architects-daughter bad-script caveat "
    "caveat-brush courgette covered-by-your-grace delicious-handrawn gaegu gloria-hallelujah "
    "gochi-hand herr-von-muellerhoff just-another-hand kaushan-script mansalva marck-script "
    "mr-de-haviland ms-madi nanum-pen-script neucha oooh-baby patrick-hand permanent-marker "
    "playpen-sans rock-salt sacramento satisfy schoolbell shadows-into-light shantell-sans "
    "short-stack sue-ellen-francisco swanky-and-moo-moo the-girl-next-door whisper yellowtail"
).split()

# Held out for validation: a connected script, two print hands, a marker-like and a casual hand.
HELDOUT_FONTS = ("dancing-script", "handlee", "indie-flower", "kalam", "shadows-into-light-two")

# Fonts whose lowercase glyphs are small capitals: their labels must be upper-cased.
CAPS_ONLY_FONTS = frozenset({"amatic-sc", "permanent-marker", "rock-salt"})


@dataclass(frozen=True)
class Font:
    """One font family at one weight, as a woff2 file Pillow can open."""

    family: str
    path: Path

    @property
    def caps_only(self) -> bool:
        return self.family in CAPS_ONLY_FONTS

    @cached_property
    def charset(self) -> frozenset[str]:
        """Characters the font has glyphs for (others would render as blanks or boxes)."""
        from fontTools.ttLib import TTFont

        return frozenset(chr(code) for code in TTFont(self.path).getBestCmap())


def fetch_fonts(cache_dir: Path, families: tuple[str, ...] | list[str]) -> list[Font]:
    """Download (once) and unpack the latin woff2 files of ``families``; return one Font per weight."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    fonts: list[Font] = []
    for family in families:
        folder = cache_dir / family
        if not folder.is_dir():
            _npm_pack(family, cache_dir, folder)
        weights = sorted(folder.glob(f"{family}-latin-*-normal.woff2"))
        if not weights:
            raise FileNotFoundError(f"no latin woff2 files for font {family!r} in {folder}")
        # Regular and bold only: hairline weights look nothing like pen strokes.
        chosen = [p for p in weights if p.name.split("-latin-")[1].split("-")[0] in {"400", "700"}] or weights
        fonts.extend(Font(family, path) for path in chosen)
    return fonts


def _npm_pack(family: str, cache_dir: Path, folder: Path) -> None:
    result = subprocess.run(
        ["npm", "pack", "--silent", f"@fontsource/{family}"],
        cwd=cache_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    tarball = cache_dir / result.stdout.strip().splitlines()[-1]
    staging = folder.with_suffix(".partial")
    staging.mkdir(exist_ok=True)
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if name.startswith(f"{family}-latin-") and name.endswith("-normal.woff2") and "-ext-" not in name:
                extracted = archive.extractfile(member)
                if extracted is not None:
                    (staging / name).write_bytes(extracted.read())
    staging.rename(folder)
    tarball.unlink()
