"""Publishing a model folder to the Hugging Face Hub, and fetching one into the local cache.

``push`` uploads a checkpoint folder (weights, processor, tokenizer, the CTC head and its
``inkwell.json``, the Inference Endpoints ``handler.py`` and the model card) as one commit;
``pull`` downloads a repository into the usual Hugging Face cache, where ``INKWELL_MODEL=<repo id>``
then finds it, also with ``HF_HUB_OFFLINE=1``. The token comes from ``HF_TOKEN`` or ``hf auth login``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
)
# Left out of a push: training leftovers and local clutter.
NOT_PUBLISHED_SUFFIXES = (".pt", ".partial", ".tmp", ".lock")


class HubError(ValueError):
    """The folder cannot be published as it is, or no token is configured (the message says why)."""


@dataclass(frozen=True)
class PushPlan:
    """What one push uploads: each file of the folder and its path in the repository."""

    folder: Path
    files: tuple[str, ...]

    def operations(self) -> list:
        """The ``huggingface_hub`` operations of the single commit (one add per file)."""
        from huggingface_hub import CommitOperationAdd

        return [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(self.folder / name)) for name in self.files]


def plan_push(folder: Path) -> PushPlan:
    """Check that ``folder`` is a complete checkpoint and list the files a push publishes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HubError(f"{folder} is not a folder")
    names = sorted(
        path.name
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and not path.name.endswith(NOT_PUBLISHED_SUFFIXES)
    )
    missing = [name for name in ("config.json", "preprocessor_config.json", "README.md") if name not in names]
    if not any(name.endswith(WEIGHT_SUFFIXES) and name != "ctc_head.safetensors" for name in names):
        missing.append("model weights (model.safetensors)")
    if not any(name in TOKENIZER_FILES for name in names):
        missing.append("a tokenizer (tokenizer.json)")
    if "inkwell.json" in names:
        declared = (json.loads((folder / "inkwell.json").read_text()).get("ctc_head") or {}).get("file")
        if declared and declared not in names:
            missing.append(f"{declared} (the CTC head inkwell.json declares)")
        if declared and "handler.py" in names and "ctc_prefix.py" not in names:
            missing.append("ctc_prefix.py (handler.py decodes with the CTC head through it)")
    if missing:
        raise HubError(f"{folder} is not a complete model folder: missing {', '.join(missing)}")
    return PushPlan(folder, tuple(names))


def push(folder: Path, repo_id: str, private: bool = False, message: str | None = None) -> str:
    """Create ``repo_id`` if needed and upload the folder as one commit; returns the commit URL."""
    from huggingface_hub import HfApi, get_token

    plan = plan_push(folder)
    if get_token() is None:
        raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.create_commit(
        repo_id,
        plan.operations(),
        repo_type="model",
        commit_message=message or f"Upload {Path(folder).name} ({len(plan.files)} files) with inkwell model push",
    )
    return info.commit_url


def pull(repo_id: str, revision: str | None = None) -> Path:
    """Download ``repo_id`` (at ``revision``) into the Hugging Face cache; returns its snapshot folder."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, revision=revision, repo_type="model"))
