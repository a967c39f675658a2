"""The training loop: joint CTC/attention loss, a time-based learning-rate schedule, resumable checkpoints.

The schedule is laid out over wall-clock hours rather than steps because this runs niced beside
other work on a 2-core machine, where steps per hour are not known in advance: warm-up for the
first 2% of the time, then cosine decay to 3% of the peak. Elapsed training time is saved in the
checkpoint, so a resumed run continues the same schedule.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from inkwell.progress import progress
from inkwell.text_metrics import character_error_rate
from training.batches import IGNORE_INDEX, Batch, Encoder, MixedSampler, validation_batches
from training.charset import BOS_ID, EOS_ID, PAD_ID, build_tokenizer
from training.data import VALIDATION_SETS
from training.model import CTCHead, ModelShape, build_model, load_resized
from training.shards import line_height, load_shard
from training.snapshots import discard_snapshots_after, save_snapshot
from worker.ctc_head import ctc_greedy_ids

log = logging.getLogger(__name__)


def bf16_is_native(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively, so that autocast to it speeds training up.

    A CUDA GPU says so itself (an older one only emulates bf16). On a CPU, PyTorch's fast bf16
    kernels need AVX-512: an AVX2-only CPU emulates them, and a step took over 20 times longer in
    bf16 than in fp32 there.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    return False


@dataclass(frozen=True)
class TrainConfig:
    root: Path
    run: str = "main"
    shape: ModelShape = field(default_factory=ModelShape)
    hours: float = 6.0
    batch_size: int = 32
    lr: float = 1e-3
    ctc_weight: float = 0.5
    real_share: float = 0.3
    eval_every: int = 1000
    # Weights-only snapshots every this many steps (0: none), the last ``keep_snapshots`` kept:
    # ``export --average K`` averages them (training.snapshots).
    snapshot_every: int = 0
    keep_snapshots: int = 4
    eval_lines: int = 400  # per validation set
    eval_batch: int = 64  # a GPU reads a whole set in one batch: `generate` costs per step, not per line
    threads: int = 2
    bf16: bool | None = None  # None: where the device computes bf16 natively (see bf16_is_native)
    label_smoothing: float = 0.1
    seed: int = 0
    init_from: Path | None = None  # start from an exported model (e.g. the committed bundled model)
    device: str = "auto"  # "auto": the GPU where torch sees one, else the CPU
    # What ``hours`` counts: "wall" seconds of training steps, or "cpu" seconds this process used
    # (all its threads): runs that share a busy machine then get equal budgets (capacity comparisons).
    clock: str = "wall"
    # Draw the next batch in a thread while the device runs this step (None: on a GPU, where the
    # CPU's batch assembly would otherwise leave it idle; on the CPU the two compete for the cores).
    prefetch: bool | None = None

    @property
    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    @property
    def seconds(self) -> Callable[[], float]:
        """The clock the schedule's hours are counted on (see ``clock``)."""
        if self.clock not in ("wall", "cpu"):
            raise ValueError(f"clock must be 'wall' or 'cpu', not {self.clock!r}")
        if self.clock == "cpu" and self.torch_device.type != "cpu":  # GPU work is not this process's CPU time
            raise ValueError("the cpu clock counts CPU seconds: budget a GPU run with the wall clock")
        return time.process_time if self.clock == "cpu" else time.monotonic

    @property
    def use_bf16(self) -> bool:
        """Whether steps and validation run under bf16 autocast."""
        return bf16_is_native(self.torch_device) if self.bf16 is None else self.bf16

    @property
    def prefetch_batches(self) -> bool:
        return self.torch_device.type != "cpu" if self.prefetch is None else self.prefetch

    @property
    def curriculum(self) -> bool:
        """Short lines first only for a model trained from scratch: one that already reads
        would spend a tenth of its schedule on lines it has mastered."""
        return self.init_from is None

    @property
    def run_dir(self) -> Path:
        return self.root / "runs" / self.run


def learning_rate(config: TrainConfig, elapsed_hours: float) -> float:
    progress = min(1.0, elapsed_hours / config.hours)
    warmup = 0.02
    if progress < warmup:
        return config.lr * max(progress / warmup, 0.01)
    cosine = 0.5 * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup)))
    return config.lr * (0.03 + 0.97 * cosine)


def ctc_greedy(log_probs: torch.Tensor, id_to_char: dict[int, str]) -> list[str]:
    """Best path decoding: collapse repeats, drop blanks (the pad id); the recognizer's own reading."""
    return ["".join(id_to_char.get(token, "") for token in ids) for ids in ctc_greedy_ids(log_probs, PAD_ID)]


def joint_loss(model, ctc_head, batch, config: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    encoded = model.encoder(pixel_values=batch.pixel_values)
    labels = batch.labels
    decoder_input = labels.new_full(labels.shape, PAD_ID)
    decoder_input[:, 0] = BOS_ID
    decoder_input[:, 1:] = labels[:, :-1].masked_fill(labels[:, :-1] == IGNORE_INDEX, PAD_ID)
    logits = model(encoder_outputs=encoded, decoder_input_ids=decoder_input).logits
    ce = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        label_smoothing=config.label_smoothing,
    )
    log_probs = ctc_head(encoded.last_hidden_state[:, 1:]).float().log_softmax(-1)
    target_mask = (labels != IGNORE_INDEX) & (labels != EOS_ID)
    targets = labels[target_mask]
    target_lengths = target_mask.sum(1)
    input_lengths = torch.full((labels.shape[0],), log_probs.shape[1], dtype=torch.long, device=log_probs.device)
    ctc = F.ctc_loss(
        log_probs.transpose(0, 1), targets, input_lengths, target_lengths, blank=PAD_ID, zero_infinity=True
    )
    loss = (1 - config.ctc_weight) * ce + config.ctc_weight * ctc
    return loss, {"ce": float(ce.detach()), "ctc": float(ctc.detach())}


@torch.no_grad()
def evaluate(
    model, ctc_head, encoder: Encoder, shards_dir: Path, config: TrainConfig, id_to_char, tokenizer
) -> dict[str, float]:
    """CER of CTC-greedy and attention-greedy reading on each validation set."""
    model.eval()
    device = next(model.parameters()).device  # wherever training put the model
    results: dict[str, float] = {}
    for name in VALIDATION_SETS:
        shard = load_shard(shards_dir / name)
        ctc_pairs, att_pairs = [], []
        for batch in validation_batches(
            shard, encoder, config.eval_batch, config.shape.height, config.shape.width, config.eval_lines
        ):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.use_bf16):
                encoded = model.encoder(pixel_values=batch.to(device).pixel_values)
                ctc_texts = ctc_greedy(ctc_head(encoded.last_hidden_state[:, 1:]).float(), id_to_char)
                generated = model.generate(
                    encoder_outputs=encoded, max_new_tokens=config.shape.max_target_tokens, num_beams=1, do_sample=False
                )
            att_texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
            ctc_pairs += zip(ctc_texts, batch.texts, strict=True)
            att_pairs += zip(att_texts, batch.texts, strict=True)
        results[f"{name}/ctc"] = character_error_rate(ctc_pairs)
        results[f"{name}/attention"] = character_error_rate(att_pairs)
        results[f"{name}/example"] = f"{att_pairs[0][0]!r} <- {att_pairs[0][1]!r}"
    model.train()
    return results


def _check_shards(shards: Path, height: int) -> None:
    """Refuse to start without the validation sets, or on shards made for another input height
    (their lines would be padded or cropped to the model's height, not scaled)."""
    missing = [name for name in VALIDATION_SETS if not (shards / name).is_dir()]
    if missing:
        raise FileNotFoundError(f"{shards} lacks {', '.join(missing)}: make them with python -m training data")
    recorded = line_height(shards)
    if recorded != height:
        raise ValueError(
            f"{shards} holds lines fitted to {recorded} px, the model reads {height} px: "
            f"make shards with python -m training data --height {height} (in a root of their own)"
        )


def train(config: TrainConfig) -> None:
    """Train until the schedule's hours are used up, checkpointing and validating as it goes."""
    if config.snapshot_every < 0 or config.keep_snapshots < 1:
        raise ValueError("snapshot_every must be 0 (none) or more, keep_snapshots 1 or more")
    _check_shards(config.root / "shards", config.shape.height)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    config.run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    vocab = tokenizer.get_vocab()
    id_to_char = {i: c for c, i in vocab.items() if i > 3}
    model = build_model(config.shape, len(vocab))
    ctc_head = CTCHead(config.shape.hidden, len(vocab))
    # On the device before the optimizer exists and before any weights are loaded, so that the
    # optimizer's restored moments land on the parameters' device.
    device = config.torch_device
    model.to(device)
    ctc_head.to(device)
    log.info("training on %s in %s", device, "bf16" if config.use_bf16 else "fp32")
    parameters = list(model.parameters()) + list(ctc_head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, betas=(0.9, 0.98), weight_decay=0.01)
    state = {"step": 0, "elapsed": 0.0, "lines": 0, "best": math.inf}
    checkpoint = config.run_dir / "last.pt"
    if config.init_from is not None and not checkpoint.exists():
        # A new machine has no checkpoint of an earlier session: continue from the exported model
        # (its weights and, where it ships one, its CTC head; the optimizer starts afresh).
        from transformers import VisionEncoderDecoderModel

        exported = VisionEncoderDecoderModel.from_pretrained(config.init_from, dtype=torch.float32)
        if load_resized(model, exported.state_dict()):  # another input height than the exported model's
            log.info("patch projection resized to lines %d px high", config.shape.height)
        head_file = config.init_from / "ctc_head.safetensors"
        if head_file.exists():
            from safetensors.torch import load_file

            head = load_file(str(head_file))
            ctc_head.load_state_dict(
                {"projection.weight": head["weight"].float(), "projection.bias": head["bias"].float()}
            )
        log.info("initialised from %s (CTC head: %s)", config.init_from, "restored" if head_file.exists() else "new")
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False, map_location="cpu")
        asked = config.shape.as_dict()
        if saved["shape"] != asked:
            changed = {key: (value, asked.get(key)) for key, value in saved["shape"].items() if value != asked.get(key)}
            raise ValueError(
                f"{checkpoint} is of another shape ({{name: (saved, asked)}}: {changed}): "
                "resume it with the options it was started with, or train under another --run"
            )
        model.load_state_dict(saved["model"])
        ctc_head.load_state_dict(saved["ctc_head"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
        log.info("resumed at step %d (%.2f h)", state["step"], state["elapsed"] / 3600)
    discard_snapshots_after(config.run_dir, state["step"])
    (config.run_dir / "config.json").write_text(
        json.dumps(
            {**config.__dict__, "use_bf16": config.use_bf16, "shape": config.shape.as_dict()}, indent=1, default=str
        )
    )
    encoder = Encoder(vocab, config.shape.max_target_tokens)
    sampler = MixedSampler(config.root / "shards", encoder, config.real_share, seed=config.seed + state["step"])
    model.train()
    window = {"loss": 0.0, "ce": 0.0, "ctc": 0.0, "n": 0}
    metrics_log = (config.run_dir / "metrics.jsonl").open("a")
    # The run is bounded by time, so the bar counts training seconds (on a terminal only).
    bar = progress(
        total=round(config.hours * 3600),
        initial=round(state["elapsed"]),
        desc="training",
        logs=True,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s [{elapsed}<{remaining}{postfix}]",
    )
    clock = config.seconds

    def draw(elapsed: float) -> Batch:
        progress = elapsed / 3600 / config.hours if config.curriculum else 1.0  # 1.0: no curriculum
        return sampler.batch(config.batch_size, config.shape.height, config.shape.width, progress)

    prefetch = ThreadPoolExecutor(max_workers=1) if config.prefetch_batches else None
    pending = prefetch.submit(draw, state["elapsed"]) if prefetch else None
    while state["elapsed"] < config.hours * 3600:
        started = clock()
        lr = learning_rate(config, state["elapsed"] / 3600)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if prefetch is not None and pending is not None:  # drawn during the last step (curriculum a step behind)
            batch = pending.result().to(device)
            pending = prefetch.submit(draw, state["elapsed"])
        else:
            batch = draw(state["elapsed"]).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.use_bf16):
            loss, parts = joint_loss(model, ctc_head, batch, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        state["step"] += 1
        state["lines"] += config.batch_size
        state["elapsed"] += clock() - started
        bar.update(min(round(state["elapsed"]), bar.total) - bar.n)
        bar.set_postfix(step=state["step"], loss=f"{float(loss.detach()):.3f}", refresh=False)
        window["loss"] += float(loss.detach())
        window["ce"] += parts["ce"]
        window["ctc"] += parts["ctc"]
        window["n"] += 1
        if state["step"] % 100 == 0:
            n = window.pop("n")
            log.info(
                "step %d lines %d %.2fh lr %.2e loss %.3f ce %.3f ctc %.3f",
                state["step"],
                state["lines"],
                state["elapsed"] / 3600,
                lr,
                window["loss"] / n,
                window["ce"] / n,
                window["ctc"] / n,
            )
            window = {"loss": 0.0, "ce": 0.0, "ctc": 0.0, "n": 0}
        finished = state["elapsed"] >= config.hours * 3600
        if config.snapshot_every and (state["step"] % config.snapshot_every == 0 or finished):
            weights = {"model": model.state_dict(), "ctc_head": ctc_head.state_dict()}
            save_snapshot(
                config.run_dir,
                {**weights, "state": dict(state), "shape": config.shape.as_dict()},
                config.keep_snapshots,
            )
        if state["step"] % config.eval_every == 0 or finished:
            results = evaluate(model, ctc_head, encoder, config.root / "shards", config, id_to_char, tokenizer)
            sampler.refresh()
            # Chosen on every unseen-material set alike: held-out hands, held-out English, unseen writers.
            score = sum(results[f"{name}/attention"] for name in VALIDATION_SETS)
            record = {**state, "lr": lr, "synthetic_lines_available": sampler.synthetic_lines, **results}
            metrics_log.write(json.dumps(record) + "\n")
            metrics_log.flush()
            log.info("eval %s", json.dumps(record))
            snapshot = {
                "model": model.state_dict(),
                "ctc_head": ctc_head.state_dict(),
                "optimizer": optimizer.state_dict(),
                "state": state,
                "shape": config.shape.as_dict(),
            }
            if score < state["best"]:
                state["best"] = score
                torch.save({**snapshot, "metrics": results}, config.run_dir / "best.pt.tmp")
                (config.run_dir / "best.pt.tmp").replace(config.run_dir / "best.pt")
            torch.save(snapshot, config.run_dir / "last.pt.tmp")
            (config.run_dir / "last.pt.tmp").replace(checkpoint)
    bar.close()
    if prefetch:
        prefetch.shutdown(cancel_futures=True)
