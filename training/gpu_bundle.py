"""A compact copy of what training reads from outside the repository, for a machine that has none of it.

A GPU machine lent by the ``device`` tool receives the working tree (64 MiB at most, the bundled
model included) and can download nothing: ``../shared`` does not travel, npm and PyPI are out of
reach. :func:`build_bundle` writes one ignored folder (``var/gpu-bundle`` by default) that
``scripts/gpu_train.sh`` trains from, and packs it into one archive beside it
(``var/gpu-bundle.tar.gz``), which is what travels: the device tool refused the folder itself
(6,600 small files, 61 MiB with the tracked tree), by its count over the 64 MiB it carries.

- ``fonts/``: the pinned font families, only the weights training renders (regular and bold);
- ``real/``: the real lines training and evaluation use (the loader's own filter), reduced to
  ``real_height`` pixels and stored as WebP; ``manifest.tsv`` and ``lines_meta.tsv`` keep their
  rows as they were but for the image's name, so the writer-disjoint split is the same;
- ``english_text/``: the English books (the held-out one included);
- ``wheels/``: the packages training imports that the GPU machine lacks, built for its Python;
- ``bundle.json``: what is in it and how large.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

from PIL import Image

from inkwell.progress import progress
from training.fonts import HELDOUT_FONTS, TRAINING_FONTS, fetch_fonts
from training.prose import DEFAULT_PROSE_DIR
from training.real_lines import DEFAULT_REAL_DIR, load_real_lines

log = logging.getLogger(__name__)

# Imported by `python -m training data/train/export/evaluate` but not installed on the GPU machine
# (its package list: /work/.library/device/KINDS.md); their versions are this environment's pins.
DEVICE_MISSING = ("faker", "brotli", "rapidfuzz")
_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
MIB = 1024 * 1024
TRAVEL_LIMIT_MIB = 64  # what the device tool carries: the working tree and the carried paths together


@dataclass(frozen=True)
class BundlePlan:
    """Where the bundle goes, where its parts come from, and how far real lines are reduced."""

    out: Path
    fonts_dir: Path
    real_dir: Path = DEFAULT_REAL_DIR
    prose_dir: Path = DEFAULT_PROSE_DIR
    real_height: int = 64  # the model's input height (64 px since run 9): no line is enlarged in training
    real_quality: int = 50  # WebP: the lines' paper noise costs the bytes; JPEG at this size is 40% larger
    real_limit: int = 0  # 0: every usable line; else this many, evenly spread (tests, dry runs)
    python_version: str = "3.12"
    wheels: bool = True


def build_bundle(plan: BundlePlan) -> dict:
    """Write the bundle at ``plan.out`` (replacing an earlier one), print its size; return its summary."""
    staging = plan.out.with_name(plan.out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    summary: dict = {"plan": {k: str(v) for k, v in asdict(plan).items()}}
    summary["font_files"] = copy_fonts(plan.fonts_dir, staging / "fonts")
    summary["real_lines"] = reduce_real_lines(
        plan.real_dir, staging / "real", plan.real_height, plan.real_quality, plan.real_limit
    )
    books = staging / "english_text"
    books.mkdir()
    for book in sorted(plan.prose_dir.glob("*.txt")):
        shutil.copy(book, books / book.name)
    summary["books"] = len(list(books.glob("*.txt")))
    summary["wheels"] = download_wheels(staging / "wheels", plan.python_version) if plan.wheels else []
    summary["mib"] = {part.name: round(folder_bytes(part) / MIB, 2) for part in sorted(staging.iterdir())}
    (staging / "bundle.json").write_text(json.dumps(summary, indent=1) + "\n")
    if plan.out.exists():
        shutil.rmtree(plan.out)
    staging.rename(plan.out)
    archive = pack_bundle(plan.out)
    bundle_mib = folder_bytes(plan.out) / MIB
    archive_mib = archive.stat().st_size / MIB
    tracked_mib = tracked_bytes(Path.cwd()) / MIB
    print(f"bundle {plan.out}: {bundle_mib:.1f} MiB ({', '.join(f'{k} {v}' for k, v in summary['mib'].items())})")
    print(
        f"packed as {archive} ({archive_mib:.1f} MiB), with the tracked tree ({tracked_mib:.1f} MiB): "
        f"{archive_mib + tracked_mib:.1f} MiB of the {TRAVEL_LIMIT_MIB} MiB the device tool carries"
    )
    if archive_mib + tracked_mib > TRAVEL_LIMIT_MIB:
        log.warning("too large to travel: lower --real-height or --real-quality")
    return summary


def pack_bundle(folder: Path) -> Path:
    """Pack ``folder`` into ``<folder>.tar.gz`` (its files under the folder's name, as
    ``scripts/gpu_train.sh`` unpacks it) and return the archive's path."""
    archive = folder.with_name(folder.name + ".tar.gz")
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        tar.add(folder, arcname=folder.name)
    partial.replace(archive)
    return archive


def copy_fonts(source: Path, dest: Path) -> int:
    """Copy the font files training and evaluation render (both sides of the split), with each
    family's pinned VERSION so that ``fetch_fonts`` there takes them as cached; return the count."""
    fonts = fetch_fonts(source, TRAINING_FONTS + list(HELDOUT_FONTS))
    for font in fonts:
        family_dir = dest / font.family
        family_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(font.path, family_dir / font.path.name)
        if (font.path.parent / "VERSION").exists():
            shutil.copy(font.path.parent / "VERSION", family_dir / "VERSION")
    for marker in source.glob("*.missing"):  # families npm does not serve: not asked for again there
        shutil.copy(marker, dest / marker.name)
    return len(fonts)


def reduce_real_lines(source: Path, dest: Path, height: int, quality: int, limit: int = 0) -> dict[str, int]:
    """Copy the real lines the loader keeps, at most ``height`` px tall, as WebP; return the counts.

    Both tables keep every column of the kept rows; only the image path's suffix changes. The
    split depends on each row's dataset and group alone, so it is the same as the source's.
    """
    train, validation, _ = load_real_lines(source)
    kept = sorted(train + validation, key=lambda line: line.path)
    if limit and len(kept) > limit:
        kept = [kept[(2 * i + 1) * len(kept) // (2 * limit)] for i in range(limit)]  # the middles of equal spans
    kept_paths = {line.path for line in kept}
    names = {path.relative_to(source).as_posix() for path in kept_paths}
    dest.mkdir(parents=True)
    for table in ("manifest.tsv", "lines_meta.tsv"):
        _filter_table(source / table, dest / table, names)

    def reduce(name: str) -> None:
        with Image.open(source / name) as opened:
            image = opened.convert("L")
        if image.height > height:
            image = image.resize((max(1, round(image.width * height / image.height)), height), Image.Resampling.LANCZOS)
        target = dest / _reduced_name(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, "WEBP", quality=quality, method=6)

    # Pillow encodes and decodes without holding the GIL.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in progress(pool.map(reduce, sorted(names)), total=len(names), desc="real lines", logs=True):
            pass
    return {
        "train": sum(line.path in kept_paths for line in train),
        "validation": sum(line.path in kept_paths for line in validation),
    }


def _reduced_name(name: str) -> str:
    return str(Path(name).with_suffix(".webp").as_posix())


def _filter_table(source: Path, dest: Path, names: set[str]) -> None:
    """Keep the header and the rows whose ``path`` is in ``names``, byte for byte but for the path.

    Written by hand rather than by ``csv``: the loader reads with QUOTE_NONE, and these texts
    hold quotes that a csv writer would escape.
    """
    lines = source.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    column = header.index("path")
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split("\t")
        if fields[column] in names:
            fields[column] = _reduced_name(fields[column])
            out.append("\t".join(fields))
    dest.write_text("\n".join(out) + "\n", encoding="utf-8")


def download_wheels(dest: Path, python_version: str) -> list[str]:
    """Fetch the wheels of ``DEVICE_MISSING`` at this environment's versions for ``python_version``
    on x86-64 Linux (no dependencies: none of them needs one there); return their file names."""
    dest.mkdir(parents=True, exist_ok=True)
    platforms = [flag for platform in _PLATFORMS for flag in ("--platform", platform)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        *platforms,
        "--dest",
        str(dest),
        *(f"{name}=={version(name)}" for name in DEVICE_MISSING),
    ]
    subprocess.run(command, check=True, timeout=600)
    return sorted(p.name for p in dest.glob("*.whl"))


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (or of ``folder`` itself, a file)."""
    if folder.is_file():
        return folder.stat().st_size
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def tracked_bytes(repo: Path) -> int:
    """Bytes of the files git tracks in ``repo`` (0 outside a git checkout)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True, timeout=60
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return 0
    return sum((repo / name).stat().st_size for name in listed.split("\0") if name and (repo / name).is_file())
