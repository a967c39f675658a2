"""The generated form set (tests/form_set.py) is its seeds: the same forms in every process."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import form_set

ROOT = Path(__file__).resolve().parents[1]

# Prints a digest of the pixels and the truth of the forms of the seeds given.
_DIGEST = """
import hashlib, json, sys
from tests.form_set import eval_hands, label_fonts, make_eval_form
hands, printed = eval_hands(), label_fonts()
out = {}
for seed in map(int, sys.argv[1:]):
    form = make_eval_form(seed, hands, printed)
    truth = [(line.text, line.kind, line.bbox) for line in form.lines]
    fields = [(f.key, f.value) for f in form.fields]
    out[seed] = hashlib.sha1(form.image.tobytes() + repr((truth, fields, form.fax)).encode()).hexdigest()
print(json.dumps(out))
"""


def _digests_in_a_new_process(seeds: list[int], hash_seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", _DIGEST, *map(str, seeds)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=300)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_form_is_the_same_in_separate_processes_and_after_other_forms() -> None:
    """Form 1043 alone (hash seed 1), and after 1042 (hash seed 2): the same pixels and truth."""
    alone = _digests_in_a_new_process([1043], "1")
    after_another = _digests_in_a_new_process([1042, 1043], "2")
    assert alone["1043"] == after_another["1043"]


def test_a_missing_label_face_raises_rather_than_drawing_another_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels pick their face from the list: without the Liberation faces every form would change.

    That is how the set changed between two runs: another task's ``apt-get install chromium``
    brought in fonts-liberation in between, and the missing faces had been skipped silently.
    """
    dejavu = tmp_path / "dejavu"
    dejavu.mkdir()
    for path in form_set.label_fonts():
        if path.name.startswith("DejaVu"):
            shutil.copy(path, dejavu / path.name)
    monkeypatch.setattr(form_set, "FONT_DIRS", (dejavu, tmp_path / "liberation"))
    with pytest.raises(FileNotFoundError, match="LiberationSans-Regular.ttf.*fonts-liberation"):
        form_set.label_fonts()


def test_every_label_face_is_used_in_its_listed_order() -> None:
    faces = form_set.label_fonts()
    assert [path.name for path in faces] == list(form_set.LABEL_FONTS)
    # and each is a distinct face file, not one found twice
    assert len({hashlib.sha1(path.read_bytes()).hexdigest() for path in faces}) == len(faces)
