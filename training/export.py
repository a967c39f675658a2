"""Write a training checkpoint as a self-contained Hugging Face model folder (the bundled model).

The folder loads with ``VisionEncoderDecoderModel.from_pretrained``, ``AutoTokenizer`` and
``AutoImageProcessor``/``TrOCRProcessor`` like any Hub checkpoint. Its image processor config
carries ``inkwell_fit_pad``, which tells Inkwell's recognizer (and the bundled ``handler.py``)
to scale lines to fit the input box and pad them instead of squashing them.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from training.charset import PAD_ID, build_tokenizer
from training.model import ModelShape, build_model

log = logging.getLogger(__name__)

HANDLER = Path(__file__).with_name("handler.py")
CTC_PREFIX = Path(__file__).resolve().parents[1] / "worker" / "ctc_prefix.py"


def export_checkpoint(checkpoint: Path, out: Path, ctc_weight: float = 0.5) -> dict:
    """Export ``checkpoint`` (a ``best.pt``) into ``out``; return the metrics saved with it."""
    saved = torch.load(checkpoint, weights_only=False, map_location="cpu")
    metrics = export_weights(saved, out, ctc_weight)
    log.info("exported %s (step %s) to %s", checkpoint, saved["state"]["step"], out)
    return metrics


def export_weights(saved: dict[str, Any], out: Path, ctc_weight: float = 0.5) -> dict:
    """Write ``saved`` (a checkpoint's model, ctc_head, state and shape) into ``out``; return its metrics.

    The CTC head trained beside the decoder ships too (``ctc_head.safetensors``, declared in
    ``inkwell.json`` with the weight joint decoding gives it; 0 turns joint decoding off).
    """
    from transformers import ViTImageProcessor

    shape = ModelShape(**saved["shape"])
    tokenizer = build_tokenizer()
    model = build_model(shape, len(tokenizer))
    model.load_state_dict(saved["model"])
    model.eval()
    # Stored in float16: half the size in the repository, and no measurable change in what it reads
    # (the recognizer loads it as float32 on the CPU, bfloat16/float16 on a GPU).
    model = model.to(torch.float16)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    ViTImageProcessor(
        do_resize=True,
        size={"height": shape.height, "width": shape.width},
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        inkwell_fit_pad={"fill": "mean", "grayscale": True},
    ).save_pretrained(staging)
    shutil.copy(HANDLER, staging / "handler.py")
    shutil.copy(CTC_PREFIX, staging / "ctc_prefix.py")  # the handler decodes as the service does
    from safetensors.torch import save_file

    head = {name: tensor.to(torch.float16).contiguous() for name, tensor in saved["ctc_head"].items()}
    save_file(
        {"weight": head["projection.weight"], "bias": head["projection.bias"]}, str(staging / "ctc_head.safetensors")
    )
    (staging / "inkwell.json").write_text(
        json.dumps(
            {
                "ctc_head": {"file": "ctc_head.safetensors", "blank_id": PAD_ID, "weight": ctc_weight},
            },
            indent=1,
        )
        + "\n"
    )
    metrics = {k: v for k, v in saved.get("metrics", {}).items() if not k.endswith("/example")}
    (staging / "training_state.json").write_text(
        json.dumps({"state": saved["state"], "shape": saved["shape"], "validation": metrics}, indent=1)
    )
    card = out / "README.md"
    if card.exists():  # the model card is written by hand and kept across exports
        shutil.copy(card, staging / "README.md")
    for path in staging.iterdir():
        path.chmod(0o644)  # safetensors writes owner-only files; a container user must read them too
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return metrics


def export_run(run_dir: Path, out: Path, ctc_weight: float = 0.5, average: int = 0) -> None:
    """Export the best checkpoint of a training run, or with ``average`` the mean of its last snapshots."""
    if not average:
        export_checkpoint(run_dir / "best.pt", out, ctc_weight)
        return
    from training.snapshots import average_snapshots

    averaged = average_snapshots(run_dir, average)
    export_weights(averaged, out, ctc_weight)
    log.info("exported the mean of %s's snapshots of steps %s to %s", run_dir, averaged["state"]["averaged_steps"], out)
