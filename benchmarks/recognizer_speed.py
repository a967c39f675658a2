"""Lines per second and peak memory of three ways to read the same lines with the same model.

    python -m benchmarks.recognizer_speed [--model PATH_OR_HUB_ID] [--lines 128] [--batch-size 32] [--rounds 3]

1. ``model-card``: the loop from TrOCR model cards, one line at a time:
   ``processor(images=image) -> model.generate(pixel_values) -> processor.batch_decode``;
2. ``batched``: ``Recognizer.recognize`` batched, without attention/embedding capture;
3. ``capture``: ``Recognizer.recognize`` batched, with attention and embeddings (what workers run).

Each mode runs in its own process so that its peak memory (RSS on the CPU, allocator peak on a
GPU) is its own; all three read the same lines in the same run, in interleaved rounds, and each ratio
against the model-card loop is the median of the ratios within rounds. This is a measurement,
not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from inkwell.paths import BUNDLED_MODEL

MODES = ("model-card", "batched", "capture")


def benchmark_lines(count: int) -> list:
    """Real handwritten lines when the shared data set is present, else rendered form lines."""
    from PIL import Image

    from training.real_lines import DEFAULT_REAL_DIR, load_real_lines

    if (DEFAULT_REAL_DIR / "manifest.tsv").exists():  # ../shared, or INKWELL_REAL_LINES_DIR (a GPU bundle's copy)
        _, validation, _ = load_real_lines(DEFAULT_REAL_DIR)
        return [Image.open(line.path).convert("RGB") for line in validation[:count]]
    from tests.tiny_models import TEXTS, render_text_line

    return [render_text_line(TEXTS[i % len(TEXTS)] + f" {i}") for i in range(count)]


def _peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def run_mode(
    mode: str,
    model: str,
    count: int,
    batch_size: int | None,
    device: str,
    threads: int,
    ctc_weight: float | None,
    repeats: int = 3,
) -> dict:
    """Read ``count`` lines ``repeats`` times in ``mode``; return the median timing (a first call is warm-up)."""
    import torch

    from worker.recognizer import Recognizer

    torch.set_num_threads(threads)
    images = benchmark_lines(count)
    recognizer = Recognizer.load(model, device=device, batch_size=batch_size, max_new_tokens=128, ctc_weight=ctc_weight)
    target = recognizer.device
    if mode == "model-card":
        from transformers import TrOCRProcessor

        processor = TrOCRProcessor.from_pretrained(model)
        net = recognizer.model  # the same weights, dtype and device

        def read(batch):
            texts = []
            for image in batch:
                pixel_values = processor(images=image, return_tensors="pt").pixel_values.to(target, net.dtype)
                generated = net.generate(pixel_values, max_new_tokens=128)
                texts.append(processor.batch_decode(generated, skip_special_tokens=True)[0])
            return texts
    else:
        capture = mode == "capture"

        def read(batch):
            return [r.text for r in recognizer.recognize(batch, capture=capture)]

    with torch.inference_mode():
        # warm-up: lazy initialisation, kernel selection, and allocations at the full batch shape
        read(images[:2] if mode == "model-card" else images[: recognizer.batch_size])
        if target.type == "cuda":
            torch.cuda.synchronize(target)
            torch.cuda.reset_peak_memory_stats(target)
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            texts = read(images)
            if target.type == "cuda":
                torch.cuda.synchronize(target)
            timings.append(time.perf_counter() - started)
    # The median, because a single pass over a few batches swings by 20% on a shared 2-core machine.
    elapsed = statistics.median(timings)
    return {
        "mode": mode,
        "lines": len(images),
        "seconds": elapsed,
        "lines_per_second": len(images) / elapsed,
        "peak_memory_mb": _peak_memory_mb(target),
        "device": str(target),
        "batch_size": recognizer.batch_size,
        "texts": texts,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(BUNDLED_MODEL))
    parser.add_argument("--lines", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recognizer's choice (32 on CPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeats", type=int, default=1, help="passes over the lines per mode and round (their median)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of all three modes; ratios are medians over rounds"
    )
    parser.add_argument(
        "--ctc-weight",
        type=float,
        default=None,
        help="joint CTC decoding in modes 2 and 3 (default: the model's; 0: attention alone, like the card loop)",
    )
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # internal: one mode, JSON out
    args = parser.parse_args(argv)
    if args.mode:
        print(
            json.dumps(
                run_mode(
                    args.mode,
                    args.model,
                    args.lines,
                    args.batch_size,
                    args.device,
                    args.threads,
                    args.ctc_weight,
                    args.repeats,
                )
            )
        )
        return
    # Rounds interleave the modes (card, batched, capture, card, ...) so that the machine's own
    # drift (seen here: the same loop 5.3 and 8.2 lines/s an hour apart) hits every mode alike;
    # each ratio is taken within a round and the median over rounds is reported.
    rounds: list[dict[str, dict]] = []
    for _ in range(args.rounds):
        results = {}
        for mode in MODES:
            command = [
                sys.executable,
                "-m",
                "benchmarks.recognizer_speed",
                "--mode",
                mode,
                "--model",
                args.model,
                "--lines",
                str(args.lines),
                "--device",
                args.device,
                "--threads",
                str(args.threads),
                "--repeats",
                str(args.repeats),
            ]
            if args.batch_size:
                command += ["--batch-size", str(args.batch_size)]
            if args.ctc_weight is not None:
                command += ["--ctc-weight", str(args.ctc_weight)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results[mode] = json.loads(output.strip().splitlines()[-1])
        rounds.append(results)
    results = rounds[-1]
    base = results["model-card"]
    decoding = (
        "attention alone"
        if args.ctc_weight == 0
        else f"joint CTC/attention ({args.ctc_weight if args.ctc_weight is not None else 'model default'})"
    )
    print(
        f"model {args.model}  device {base['device']}  lines {base['lines']}  batch {results['batched']['batch_size']} "
        f" threads {args.threads}  "
        f"modes 2-3 decode with {decoding}"
    )
    print(
        f"{'mode':<12}{'lines/s':>10}{'x card':>9}{'peak MB':>10}   x card min/max over {args.rounds} rounds "
        f"({args.repeats} passes each)"
    )
    for mode in MODES:
        speeds = [r[mode]["lines_per_second"] for r in rounds]
        ratios = [r[mode]["lines_per_second"] / r["model-card"]["lines_per_second"] for r in rounds]
        peak = max(r[mode]["peak_memory_mb"] for r in rounds)
        print(
            f"{mode:<12}{statistics.median(speeds):>10.2f}{statistics.median(ratios):>9.2f}{peak:>10.0f}"
            f"   {min(ratios):.2f} / {max(ratios):.2f}"
        )
    slowdown = (
        statistics.median(r["batched"]["lines_per_second"] / r["capture"]["lines_per_second"] for r in rounds) - 1
    )
    agree = sum(a == b for a, b in zip(results["batched"]["texts"], results["capture"]["texts"], strict=True))
    card_agree = sum(a == b for a, b in zip(results["batched"]["texts"], base["texts"], strict=True))
    print(f"capture costs {slowdown * 100:+.1f}% time against batched without capture")
    print(
        f"same text: capture vs batched {agree}/{base['lines']}; model-card loop vs batched "
        f"{card_agree}/{base['lines']}"
    )


if __name__ == "__main__":
    main()
