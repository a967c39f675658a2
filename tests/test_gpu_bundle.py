"""The GPU bundle's copy of the real lines: only what the loader keeps, smaller, same split; and the
settings that point training at a bundle instead of ../shared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from training.data import DataPlan, synthetic_shards
from training.gpu_bundle import pack_bundle, reduce_real_lines
from training.real_lines import load_real_lines

MANIFEST_HEADER = "path\ttext\tdataset_slug\trepo@commit\tlicence"
META_HEADER = "path\tsource_xml\tsource_image\tline_id\tline_type\tgroup\twidth_px\tflags"
# (collection, group, text, flags): cremma_mss_18's Diderot hand is always a validation hand.
ROWS = [
    ("cremma_mss_18", "le-sallon-de-1767-denis-diderot", "Le salon de l'année", ""),
    ("cremma_mss_18", "le-sallon-de-1767-denis-diderot", 'dit-il, "voilà" tout', ""),
    ("cremma_mss_18", "autre-main", "une autre main écrit ceci", ""),
    ("cremma_mss_18", "autre-main", "rayé puis réécrit", "markup"),
    ("peraire", "0001", "12", ""),  # too short: a folio number
    ("peraire", "0001", "symbole \u2603 inconnu", ""),  # outside the alphabet
    ("peraire", "0002", "Registre des actes", ""),
    ("peraire", "0003", "de l'an mil huit cent", ""),
]


def make_collection(root: Path, height: int = 64) -> None:
    """A miniature of ../shared/data/handwriting_lines_fr: PNG lines and both tables."""
    rng = np.random.default_rng(0)
    manifest, meta = [MANIFEST_HEADER], [META_HEADER]
    for index, (dataset, group, text, flags) in enumerate(ROWS):
        path = f"{dataset}/{index:06d}.png"
        (root / dataset).mkdir(parents=True, exist_ok=True)
        width = 100 + 40 * index
        Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)).save(root / path)
        manifest.append(f"{path}\t{text}\t{dataset}\towner/repo@abc\tCC-BY-4.0")
        meta.append(f"{path}\talto/{index}.xml\tjpg/{index}.jpg\tline_{index}\tdefault\t{group}\t{width}\t{flags}")
    (root / "manifest.tsv").write_text("\n".join(manifest) + "\n", encoding="utf-8")
    (root / "lines_meta.tsv").write_text("\n".join(meta) + "\n", encoding="utf-8")


def summary(lines) -> list[tuple[str, str, str]]:
    return sorted((line.dataset, line.group, line.text) for line in lines)


def test_reduced_real_lines_keep_the_usable_ones_smaller_and_split_alike(tmp_path: Path) -> None:
    source, dest = tmp_path / "source", tmp_path / "bundle"
    make_collection(source)
    counts = reduce_real_lines(source, dest, height=32, quality=60)

    train, validation, skipped = load_real_lines(source)
    bundled_train, bundled_validation, bundled_skipped = load_real_lines(dest)
    assert counts == {"train": 3, "validation": 2} == {"train": len(train), "validation": len(validation)}
    assert summary(bundled_train) == summary(train)
    assert summary(bundled_validation) == summary(validation)
    assert skipped == {"markup": 1, "short": 1, "alphabet": 1}
    assert bundled_skipped == {"markup": 0, "short": 0, "alphabet": 0}  # the skipped rows did not travel
    for line in bundled_train + bundled_validation:
        original = source / line.path.relative_to(dest).with_suffix(".png")
        with Image.open(line.path) as reduced, Image.open(original) as full:
            assert reduced.format == "WEBP"
            assert reduced.height == 32 and reduced.width == round(full.width / 2)
    # Every other column travels untouched (provenance and licence included).
    row = (dest / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1].split("\t")
    assert row[0].endswith(".webp") and row[3:] == ["owner/repo@abc", "CC-BY-4.0"]


def test_a_limit_keeps_that_many_lines_spread_over_the_collections(tmp_path: Path) -> None:
    source, dest = tmp_path / "source", tmp_path / "bundle"
    make_collection(source)
    counts = reduce_real_lines(source, dest, height=80, quality=60, limit=2)
    train, validation, _ = load_real_lines(dest)
    assert sum(counts.values()) == len(train) + len(validation) == 2
    assert {line.dataset for line in train + validation} == {"cremma_mss_18", "peraire"}
    with Image.open((train + validation)[0].path) as image:
        assert image.height == 64  # never enlarged


def test_environment_points_training_at_a_bundle(tmp_path: Path) -> None:
    env = {**os.environ, "INKWELL_REAL_LINES_DIR": str(tmp_path / "real"), "INKWELL_ENGLISH_TEXT_DIR": str(tmp_path)}
    code = "from training.real_lines import DEFAULT_REAL_DIR; from training.prose import DEFAULT_PROSE_DIR; "
    code += "print(DEFAULT_REAL_DIR); print(DEFAULT_PROSE_DIR)"
    printed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert printed.stdout.split() == [str(tmp_path / "real"), str(tmp_path)]


def test_smaller_shards_cover_the_same_number_of_lines() -> None:
    plan = DataPlan(Path("unused"), synthetic_lines=5_000, height=40, width=512, shard_lines=2_000, first_shard=3)
    assert list(synthetic_shards(plan)) == [3, 4, 5]


def test_the_packed_bundle_unpacks_to_the_same_files(tmp_path: Path) -> None:
    """What travels is one archive; gpu_train.sh unpacks it with --strip-components=1."""
    bundle = tmp_path / "gpu-bundle"
    make_collection(bundle / "real")
    (bundle / "bundle.json").write_text("{}\n")
    archive = pack_bundle(bundle)
    assert archive == tmp_path / "gpu-bundle.tar.gz" and not list(tmp_path.glob("*.partial"))
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-C", str(unpacked), "--strip-components=1", "-xzf", str(archive)], check=True)
    files = sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(unpacked) for p in unpacked.rglob("*") if p.is_file())
    assert all((bundle / name).read_bytes() == (unpacked / name).read_bytes() for name in files)


# What a lent GPU machine lacks besides DEVICE_MISSING: the service's libraries.
SERVICE_ONLY = ("pydantic", "pydantic_settings", "sqlalchemy", "celery", "flask", "redis", "alembic")


def test_training_and_the_speed_benchmark_import_without_the_services_libraries() -> None:
    """The GPU machine runs training and benchmarks with torch and transformers but none of the
    service's libraries: nothing they import may reach ``inkwell.config`` (the bundled model's
    path comes from ``inkwell.paths``)."""
    blocker = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        f"        if name.split('.')[0] in {SERVICE_ONLY!r}:\n"
        "            raise ImportError('not on the GPU machine: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import benchmarks.recognizer_speed, training.__main__, training.train, training.evaluate\n"
        "import training.calibrate, training.export, worker.recognizer\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", blocker], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
