"""A Hugging Face cache laid out as ``huggingface_hub`` leaves it after downloading a repository.

``models--<org>--<name>/blobs/<hash>`` holds the files, ``snapshots/<commit>/<file>`` links to
them and ``refs/main`` names the commit: what ``from_pretrained`` and ``hf_hub_download`` read
with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def install_in_hub_cache(folder: Path, hub_cache: Path, repo_id: str) -> str:
    """Lay ``folder``'s files out in ``hub_cache`` as the download of ``repo_id``; returns the commit id."""
    files = sorted(path for path in folder.iterdir() if path.is_file())
    commit = hashlib.sha1(b"".join(hashlib.sha256(path.read_bytes()).digest() for path in files)).hexdigest()
    repo = hub_cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for path in files:
        blob = hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copyfile(path, repo / "blobs" / blob)
        link = snapshot / path.name
        if not link.exists():
            os.symlink(Path("..") / ".." / "blobs" / blob, link)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return commit
