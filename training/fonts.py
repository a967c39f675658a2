"""The handwriting fonts that synthetic training lines are rendered from, and the held-out split.

Every family listed in shared/DESIGN.md is used (open-licence ``@fontsource`` packages fetched
from the npm registry with ``npm pack``; a name the registry does not have is skipped). A fifth
of each style group never appears in training, so that the validation sets measure reading hands
the model has never seen, across styles, not memorised glyphs. The families the earlier bundled
models trained on stay on the training side, so the held-out families are unseen by every model
that continues from them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

log = logging.getLogger(__name__)

# The lists of shared/DESIGN.md, by the section they are listed in.
EVERYDAY_FAMILIES = (
    "annie-use-your-telescope architects-daughter bad-script caveat caveat-brush coming-soon "
    "covered-by-your-grace crafty-girls dawning-of-a-new-day dekko delicious-handrawn delius "
    "delius-unicase edu-au-vic-wa-nt-hand edu-nsw-act-foundation edu-qld-beginner edu-sa-beginner "
    "edu-tas-beginner edu-vic-wa-nt-beginner fuggles gaegu give-you-glory gloria-hallelujah gochi-hand "
    "grape-nuts handlee indie-flower itim just-another-hand just-me-again-down-here kalam kite-one "
    "klee-one loved-by-the-king mansalva mynerve nanum-pen-script neucha over-the-rainbow pangolin "
    "patrick-hand patrick-hand-sc permanent-marker playpen-sans rock-salt schoolbell shadows-into-light "
    "shadows-into-light-two shantell-sans short-stack sue-ellen-francisco sunshiney swanky-and-moo-moo "
    "the-girl-next-door walter-turncoat yomogi amatic-sc chilanka comic-neue gamja-flower hi-melody "
    "julee mali nerko-one poor-story square-peg sriracha"
).split()
PLAYWRITE_FAMILIES = (
    "playwrite-ar playwrite-at playwrite-au-nsw playwrite-au-qld playwrite-au-sa playwrite-au-tas "
    "playwrite-au-vic playwrite-be-vlg playwrite-be-wal playwrite-br playwrite-ca playwrite-cl "
    "playwrite-co playwrite-cu playwrite-cz playwrite-de-grund playwrite-de-la playwrite-de-sas "
    "playwrite-de-va playwrite-dk-loopet playwrite-dk-uloopet playwrite-es playwrite-es-deco "
    "playwrite-fr-moderne playwrite-fr-trad playwrite-gb-j playwrite-gb-s playwrite-hr "
    "playwrite-hr-lijeva playwrite-hu playwrite-id playwrite-ie playwrite-in playwrite-is "
    "playwrite-it-moderna playwrite-it-trad playwrite-mx playwrite-ng-modern playwrite-nl playwrite-no "
    "playwrite-nz playwrite-pe playwrite-pl playwrite-pt playwrite-ro playwrite-sk playwrite-tz "
    "playwrite-us-modern playwrite-us-trad playwrite-vn playwrite-za"
).split()
CURSIVE_FAMILIES = (
    "alex-brush allison allura arizonia beau-rivage beth-ellen bilbo birthstone calligraffitti caramel "
    "cherish comforter condiment cookie corinthia courgette dancing-script damion engagement ephesis "
    "euphoria-script explora felipa fleur-de-leah fondamento grand-hotel great-vibes grechen-fuemen "
    "gwendolyn herr-von-muellerhoff hurricane inspiration island-moments italianno kaushan-script "
    "league-script licorice love-light lovers-quarrel marck-script meddon meow-script merienda "
    "monsieur-la-doulaise montez moon-dance mr-bedfort mr-dafoe mr-de-haviland mrs-saint-delafield "
    "mrs-sheppards ms-madi my-soul niconne norican oooh-baby pacifico parisienne passions-conflict "
    "petit-formal-script pinyon-script playball qwigley rancho redressed rochester rouge-script ruthie "
    "sacramento sassy-frass satisfy send-flowers shalimar sofia stalemate tangerine the-nautigal updock "
    "vibur vujahday-script whisper windsong yellowtail yesteryear"
).split()

# Families drawn with a felt pen or brush: thick, blunt strokes.
MARKER_FAMILIES = frozenset(
    "permanent-marker rock-salt caveat-brush mansalva walter-turncoat sunshiney just-another-hand "
    "nanum-pen-script gochi-hand covered-by-your-grace nerko-one sriracha".split()
)
# Families whose lower case is drawn as (small) capitals: their labels must be upper-cased.
CAPS_ONLY_FAMILIES = frozenset(
    "amatic-sc permanent-marker rock-salt delius-unicase patrick-hand-sc walter-turncoat".split()
)

STYLE_GROUPS = ("print", "school", "cursive", "marker", "caps-only")

# What the bundled models up to run 5 trained on: these stay training fonts for good.
LEGACY_TRAINING_FAMILIES = frozenset(
    "alex-brush allura amatic-sc annie-use-your-telescope architects-daughter bad-script caveat "
    "caveat-brush courgette covered-by-your-grace delicious-handrawn gaegu gloria-hallelujah "
    "gochi-hand herr-von-muellerhoff just-another-hand kaushan-script mansalva marck-script "
    "mr-de-haviland ms-madi nanum-pen-script neucha oooh-baby patrick-hand permanent-marker "
    "playpen-sans rock-salt sacramento satisfy schoolbell shadows-into-light shantell-sans "
    "short-stack sue-ellen-francisco swanky-and-moo-moo the-girl-next-door whisper yellowtail".split()
)
# ... and these were their validation fonts: held out for good.
LEGACY_HELDOUT_FAMILIES = ("dancing-script", "handlee", "indie-flower", "kalam", "shadows-into-light-two")

HELDOUT_SHARE = 5  # one family in five of every style group

# Listed in DESIGN.md but not served by the npm registry as @fontsource/<name> (npm pack fails;
# checked 2026-11-29). Left out of the split so that the held-out fifth is a fifth of what exists.
NOT_ON_NPM = frozenset(
    "beau-rivage cherish mrs-sheppards playwrite-au-nsw playwrite-au-sa playwrite-au-tas "
    "playwrite-be-vlg playwrite-de-la playwrite-de-va playwrite-gb-j playwrite-gb-s shalimar".split()
)


def style_of(family: str) -> str:
    """The style group a family is validated in: caps-only and marker first, then its DESIGN.md list."""
    if family in CAPS_ONLY_FAMILIES:
        return "caps-only"
    if family in MARKER_FAMILIES:
        return "marker"
    if family in PLAYWRITE_FAMILIES or family.startswith("edu-"):
        return "school"
    if family in CURSIVE_FAMILIES:
        return "cursive"
    return "print"


def check_style_weight(group: str, weight: float) -> None:
    """Raise ValueError unless ``group`` is a style group and ``weight`` finite and not negative."""
    if group not in STYLE_GROUPS:
        raise ValueError(f"unknown style groups: {group!r}; known: {', '.join(STYLE_GROUPS)}")
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"weight of {group} must be a finite number, not negative")


def _split() -> tuple[list[str], list[str]]:
    """A fifth of each style group held out: the legacy validation fonts, then others by a stable hash."""
    families = sorted(set(EVERYDAY_FAMILIES + PLAYWRITE_FAMILIES + CURSIVE_FAMILIES) - NOT_ON_NPM)
    heldout: list[str] = []
    for group in STYLE_GROUPS:
        members = [f for f in families if style_of(f) == group]
        wanted = math.ceil(len(members) / HELDOUT_SHARE)
        chosen = [f for f in LEGACY_HELDOUT_FAMILIES if f in members]
        candidates = sorted(
            (f for f in members if f not in LEGACY_TRAINING_FAMILIES and f not in chosen),
            key=lambda f: hashlib.sha256(f.encode()).hexdigest(),
        )
        heldout += chosen + candidates[: max(0, wanted - len(chosen))]
    return [f for f in families if f not in heldout], sorted(heldout)


TRAINING_FONTS, HELDOUT_FONTS = _split()

# The package version of every family, so that a later machine renders the same lines and the
# same generated forms (a font's new release would change them). ``python -m training lock-fonts``
# rewrites it from the registry's latest releases.
FONT_VERSIONS_FILE = Path(__file__).resolve().parent / "font_versions.json"


def font_versions() -> dict[str, str]:
    """Family -> the pinned ``@fontsource`` package version (see ``FONT_VERSIONS_FILE``)."""
    return json.loads(FONT_VERSIONS_FILE.read_text()) if FONT_VERSIONS_FILE.exists() else {}


def package_spec(family: str, versions: dict[str, str]) -> str:
    """What ``npm pack`` fetches for ``family``: its pinned version where there is one."""
    version = versions.get(family)
    return f"@fontsource/{family}@{version}" if version else f"@fontsource/{family}"


def lock_font_versions(families: list[str]) -> dict[str, str]:
    """Write the registry's latest version of each of ``families`` to ``FONT_VERSIONS_FILE``."""

    def latest(family: str) -> str:
        command = ["npm", "view", f"@fontsource/{family}", "version"]
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=300).stdout.strip()

    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = dict(zip(families, pool.map(latest, families), strict=True))
    FONT_VERSIONS_FILE.write_text(json.dumps(dict(sorted(versions.items())), indent=1) + "\n")
    return versions


@dataclass(frozen=True)
class Font:
    """One font family at one weight, as a woff2 file Pillow can open."""

    family: str
    path: Path

    @cached_property
    def caps_only(self) -> bool:
        """Lower case drawn as capitals: listed as such, or found so by comparing glyph shapes."""
        return self.family in CAPS_ONLY_FAMILIES or draws_lowercase_as_capitals(self.path)

    @property
    def style(self) -> str:
        return style_of(self.family)

    @cached_property
    def charset(self) -> frozenset[str]:
        """Characters the font really draws: mapped in its cmap and with a non-empty outline.

        Several script fonts map digits or symbols to an empty glyph; rendering those would
        teach the model to read a blank as a character.
        """
        from fontTools.ttLib import TTFont

        font = TTFont(self.path)
        glyphs = font.getGlyphSet()
        drawn = set()
        for code, name in font.getBestCmap().items():
            char = chr(code)
            if char.isspace() or _has_outline(glyphs, name):
                drawn.add(char)
        return frozenset(drawn)


_CASE_PROBES = "abdeghmnqrt"  # letters whose lower case differs from the capital in any ordinary hand


def draws_lowercase_as_capitals(path: Path, size: int = 64) -> bool:
    """True when most probe letters look like their capitals (small caps or unicase fonts).

    Each lower-case glyph and its capital are rendered, cropped to their ink and scaled to one
    square; in an ordinary hand the two differ a lot (a/A, g/G), in a small-caps face they are
    the same drawing at two sizes.
    """
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(str(path), size)

    def shape(char: str) -> np.ndarray | None:
        canvas = Image.new("L", (size * 3, size * 3), 0)
        ImageDraw.Draw(canvas).text((size, size // 2), char, font=face, fill=255)
        box = canvas.getbbox()
        if box is None:
            return None
        glyph = np.asarray(canvas.crop(box).resize((24, 24), Image.Resampling.BILINEAR), dtype=np.float32)
        glyph -= glyph.mean()
        norm = float(np.linalg.norm(glyph))
        return glyph / norm if norm else None

    similarities = []
    for lower in _CASE_PROBES:
        a, b = shape(lower), shape(lower.upper())
        if a is not None and b is not None:
            similarities.append(float((a * b).sum()))
    # Ordinary hands measure 0.0-0.4 on average here, small-caps and unicase faces 0.7-1.0.
    return bool(similarities) and sum(similarities) / len(similarities) > 0.6


def _has_outline(glyphs, name: str) -> bool:  # glyphs: fontTools GlyphSet
    from fontTools.pens.boundsPen import BoundsPen

    pen = BoundsPen(glyphs)
    try:
        glyphs[name].draw(pen)
    except Exception:  # noqa: BLE001 - a broken glyph program draws nothing we could use
        return False
    return pen.bounds is not None


def fetch_fonts(cache_dir: Path, families: tuple[str, ...] | list[str], strict: bool = False) -> list[Font]:
    """Download (once) and unpack the latin woff2 files of ``families``; return one Font per weight.

    A family the npm registry does not serve is skipped with a warning (or raises when ``strict``).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    versions = font_versions()
    missing = [
        family
        for family in families
        if not _cached(cache_dir / family, versions.get(family))
        and (strict or not (cache_dir / f"{family}.missing").exists())
    ]
    # npm spends its time waiting on the registry: fetching a fresh machine's 200 families one
    # by one took half an hour, a few at a time takes minutes.
    with ThreadPoolExecutor(max_workers=8) as pool:
        failures = dict(
            zip(missing, pool.map(lambda family: _try_npm_pack(family, cache_dir, versions), missing), strict=True)
        )
    fonts: list[Font] = []
    for family in families:
        folder = cache_dir / family
        error = failures.get(family)
        if error is not None and folder.is_dir():
            # an offline machine with a copy unpacked before the pins: better that than nothing
            log.warning("font %s: pinned version not fetched (%s); using the copy in %s", family, error, folder)
        elif error is not None:
            if strict:
                raise error
            log.warning("font %s skipped: npm pack failed (%s)", family, error)
            (cache_dir / f"{family}.missing").write_text(str(error))
            continue
        if not folder.is_dir():
            continue  # marked missing by an earlier fetch
        weights = sorted(folder.glob(f"{family}-latin-*-normal.woff2"))
        if not weights:
            if strict:
                raise FileNotFoundError(f"no latin woff2 files for font {family!r} in {folder}")
            log.warning("font %s skipped: no latin woff2 file", family)
            continue
        # Regular and bold only: hairline weights look nothing like pen strokes.
        chosen = [p for p in weights if p.name.split("-latin-")[1].split("-")[0] in {"400", "700"}] or weights[:2]
        fonts.extend(Font(family, path) for path in chosen)
    return fonts


def _cached(folder: Path, version: str | None) -> bool:
    """Whether ``folder`` holds the family unpacked, at ``version`` where one is pinned."""
    if not folder.is_dir():
        return False
    return version is None or (folder / "VERSION").exists() and (folder / "VERSION").read_text().strip() == version


def _try_npm_pack(family: str, cache_dir: Path, versions: dict[str, str]) -> Exception | None:
    """Download and unpack one family; the error instead of raising it (for a thread pool)."""
    try:
        _npm_pack(family, cache_dir, cache_dir / family, versions)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        return error
    return None


def _npm_pack(family: str, cache_dir: Path, folder: Path, versions: dict[str, str]) -> None:
    result = subprocess.run(
        ["npm", "pack", "--silent", package_spec(family, versions)],
        cwd=cache_dir,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    tarball = cache_dir / result.stdout.strip().splitlines()[-1]
    staging = folder.with_suffix(".partial")
    if staging.exists():
        shutil.rmtree(staging)  # left by an interrupted fetch, perhaps of another version
    staging.mkdir()
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if name.startswith(f"{family}-latin-") and name.endswith("-normal.woff2") and "-ext-" not in name:
                extracted = archive.extractfile(member)
                if extracted is not None:
                    (staging / name).write_bytes(extracted.read())
        manifest = archive.extractfile("package/package.json")
        if manifest is not None:
            (staging / "VERSION").write_text(json.loads(manifest.read())["version"])
    if folder.exists():
        shutil.rmtree(folder)  # another version, unpacked before the pin changed
    staging.rename(folder)
    tarball.unlink()
    (cache_dir / f"{family}.missing").unlink(missing_ok=True)
