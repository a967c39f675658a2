"""Weights-only snapshots kept along a run, and their average (checkpoint averaging).

Averaging the weights of the last few snapshots of a run smooths out the step-to-step noise of
its final stretch: on run 14 the average of its last four evaluation checkpoints read held-out
form lines at 5.23% CER against 5.34% for the last one alone. A snapshot holds what an export
needs (model, CTC head, state, shape) and no optimizer moments, a third of a checkpoint's size.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

SNAPSHOT_DIR = "snapshots"


def _step_of(path: Path) -> int:
    return int(path.stem.removeprefix("step-"))


def snapshot_paths(run_dir: Path) -> list[Path]:
    """The run's snapshots, oldest first."""
    return sorted((run_dir / SNAPSHOT_DIR).glob("step-*.pt"), key=_step_of)


def save_snapshot(run_dir: Path, snapshot: dict[str, Any], keep: int) -> Path:
    """Write ``snapshot`` (model, ctc_head, state, shape) as the step's file; keep only the last ``keep``."""
    if keep < 1:
        raise ValueError(f"keep at least one snapshot, not {keep}")
    folder = run_dir / SNAPSHOT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{snapshot['state']['step']:07d}.pt"
    partial = path.with_suffix(".pt.tmp")  # never a half-written snapshot under a name that averaging reads
    torch.save(snapshot, partial)
    partial.replace(path)
    for old in snapshot_paths(run_dir)[:-keep]:
        old.unlink()
    return path


def discard_snapshots_after(run_dir: Path, step: int) -> None:
    """Delete the snapshots a crashed run wrote after the checkpoint it resumes from (and any
    half-written one): the resumed run retraces those steps on other batches, and averaging must
    not mix the abandoned weights with its own."""
    for path in snapshot_paths(run_dir):
        if _step_of(path) > step:
            log.info("discarding %s, written after the checkpoint resumed from (step %d)", path.name, step)
            path.unlink()
    for partial in (run_dir / SNAPSHOT_DIR).glob("*.pt.tmp"):
        partial.unlink()


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of state dicts with the same keys and shapes.

    Floating-point tensors are averaged in float64 (exact for identical float32 ones) and given
    back in their own dtype; any other tensor (an index buffer) must be the same in all of them
    and is kept as it is.
    """
    if not states:
        raise ValueError("nothing to average")
    keys = states[0].keys()
    if any(state.keys() != keys for state in states[1:]):
        raise ValueError("the state dicts hold different tensors: snapshots of different models")
    averaged: dict[str, torch.Tensor] = {}
    for key in keys:
        tensors = [state[key] for state in states]
        if any(tensor.shape != tensors[0].shape for tensor in tensors):
            raise ValueError(f"{key} has different shapes in the snapshots")
        if tensors[0].is_floating_point():
            total = torch.stack([tensor.double() for tensor in tensors]).mean(0)
            averaged[key] = total.to(tensors[0].dtype)
        elif all(torch.equal(tensor, tensors[0]) for tensor in tensors[1:]):
            averaged[key] = tensors[0].clone()
        else:
            raise ValueError(f"{key} is not a floating-point tensor and differs between the snapshots")
    return averaged


def average_snapshots(run_dir: Path, count: int) -> dict[str, Any]:
    """A checkpoint-like dict whose model and CTC head are the mean of the run's last ``count`` snapshots.

    Its state is the last snapshot's, with ``averaged_steps`` listing the steps that went in (and
    without ``best``, a validation score of other weights).
    """
    if count < 1:
        raise ValueError(f"average at least one snapshot, not {count}")
    paths = snapshot_paths(run_dir)
    if len(paths) < count:
        raise ValueError(
            f"{run_dir / SNAPSHOT_DIR} holds {len(paths)} snapshots, {count} asked: "
            "train with --snapshot-every N --keep-snapshots K (K >= the count averaged)"
        )
    snapshots = [torch.load(path, weights_only=False, map_location="cpu") for path in paths[-count:]]
    shapes = {str(snapshot["shape"]) for snapshot in snapshots}
    if len(shapes) > 1:
        raise ValueError(f"the last {count} snapshots of {run_dir} are of different model shapes")
    last = snapshots[-1]
    steps = [snapshot["state"]["step"] for snapshot in snapshots]
    log.info("averaging the snapshots of steps %s", ", ".join(map(str, steps)))
    return {
        "model": average_states([snapshot["model"] for snapshot in snapshots]),
        "ctc_head": average_states([snapshot["ctc_head"] for snapshot in snapshots]),
        "state": {**{k: v for k, v in last["state"].items() if k != "best"}, "averaged_steps": steps},
        "shape": last["shape"],
    }
