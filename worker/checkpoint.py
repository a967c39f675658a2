"""What a checkpoint says about itself: device and dtype, patch grid, preprocessing, token ids,
Inkwell's own ``inkwell.json`` manifest (CTC head, calibration) and its files, local or on the Hub."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from worker.calibration import Calibration

Preprocessing = Literal["auto", "processor", "fit-pad"]
MANIFEST = "inkwell.json"


@dataclass(frozen=True)
class FitPad:
    """Aspect-preserving preprocessing parameters (see worker.line_image)."""

    height: int
    width: int
    fill: Literal["mean", "zero"]
    grayscale: bool
    mean: float
    std: float


CPU_BATCH_SIZE = 32


def batch_size_for_memory(free_bytes: float, bytes_per_line: float, share: float = 0.7, cap: int = 512) -> int:
    """How many lines fit in ``share`` of ``free_bytes`` at ``bytes_per_line`` (at least 1, at most ``cap``)."""
    return int(max(1, min(cap, share * free_bytes // max(bytes_per_line, 1))))


def resolve_device(device: str) -> torch.device:
    """'auto' -> the first CUDA device when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def dtype_for(device: torch.device) -> torch.dtype:
    """bf16 on CUDA (fp16 where bf16 is unsupported), fp32 on the CPU."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_calibration(source: str) -> Calibration | None:
    """The confidence calibration declared in the checkpoint's ``inkwell.json``, if any."""
    manifest = checkpoint_file(source, MANIFEST)
    if manifest is None:
        return None
    return Calibration.from_manifest(json.loads(manifest.read_text()).get("calibration"))


def checkpoint_file(source: str, filename: str) -> Path | None:
    """A file of a local checkpoint folder, or of a Hub checkpoint (downloaded if present there)."""
    local = Path(source) / filename
    if Path(source).is_dir():
        return local if local.exists() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(source, filename))
    except Exception:  # noqa: BLE001 - optional file: absent, or the Hub unreachable
        return None


@dataclass(frozen=True)
class PatchGrid:
    rows: int
    cols: int
    patch_height: int
    patch_width: int
    prefix_tokens: int  # CLS (and DeiT's distillation token) before the patches
    channels: int

    @property
    def input_height(self) -> int:
        return self.rows * self.patch_height

    @property
    def input_width(self) -> int:
        return self.cols * self.patch_width


def _pair(value: Any) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (list, tuple)) else (int(value), int(value))


def patch_grid(encoder_config: Any, fit_pad: FitPad | None) -> PatchGrid:
    height, width = _pair(encoder_config.image_size)
    patch_h, patch_w = _pair(encoder_config.patch_size)
    prefix = 2 if encoder_config.model_type == "deit" else 1
    return PatchGrid(
        height // patch_h, width // patch_w, patch_h, patch_w, prefix, int(getattr(encoder_config, "num_channels", 3))
    )


def fit_pad_from(image_processor: Any, preprocessing: Preprocessing) -> FitPad | None:
    declared = getattr(image_processor, "inkwell_fit_pad", None)
    if preprocessing == "processor" or (preprocessing == "auto" and not declared):
        return None
    declared = declared or {}
    size = image_processor.size
    height = size.get("height") or size.get("shortest_edge")
    width = size.get("width") or size.get("shortest_edge")
    mean = image_processor.image_mean
    std = image_processor.image_std
    return FitPad(
        height=int(height),
        width=int(width),
        fill=declared.get("fill", "mean"),
        grayscale=bool(declared.get("grayscale", False)),
        mean=float(mean[0] if isinstance(mean, (list, tuple)) else mean),
        std=float(std[0] if isinstance(std, (list, tuple)) else std),
    )


def first_not_none(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None
