"""Reading speed of candidate model sizes on this machine: the speed side of choosing the bundled
model's capacity (the quality side is an equal-CPU-hours training run per size, see the model card).

    python -m benchmarks.model_capacity [--lines 64] [--rounds 3] [--threads 2]

Each candidate shape is built with random weights, exported the way the bundled model is
(``training.export``) and read by the workers' recognizer: batched, joint CTC/attention decoding,
attention maps and embeddings captured. A random model never knows where a line ends, so every
model, the bundled one included, is made to decode exactly as many tokens per line as the bundled
model reads on these lines on average: the figures compare the cost of size at equal work. The
bundled model's own, unforced speed is printed too, and each candidate's expected real speed is
that times its forced speed over the bundled model's forced speed. Rounds interleave the models
and the medians are reported, because a shared 2-core machine drifts. Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from inkwell.paths import BUNDLED_MODEL

# The bundled shape (64 px high since run 9), the same reading 40 px lines (runs 1-8), and two
# larger ones (about 2x and 3x its parameters), at the bundled height. Patches are full-height
# slices, so a taller input adds no patch: only the patch embedding grows (lines of small letters
# in tall scripts have more pixels to be read by).
CANDIDATES = {
    "bundled shape": {},
    "bundled, 40 px high": {"height": 40},
    "medium": {"hidden": 320, "encoder_layers": 8, "decoder_layers": 4, "encoder_ffn": 1280, "decoder_ffn": 1280},
    "large": {
        "hidden": 384,
        "encoder_layers": 8,
        "decoder_layers": 6,
        "encoder_heads": 6,
        "decoder_heads": 6,
        "encoder_ffn": 1536,
        "decoder_ffn": 1536,
    },
}


def export_random_model(overrides: dict, out: Path) -> int:
    """Export a randomly initialised model of the bundled shape with ``overrides`` to ``out``;
    return its parameter count (model and CTC head)."""
    import torch

    from training.charset import build_tokenizer
    from training.export import export_checkpoint
    from training.model import CTCHead, ModelShape, build_model

    shape = replace(ModelShape(), **overrides)
    vocab_size = len(build_tokenizer())
    torch.manual_seed(0)
    model, head = build_model(shape, vocab_size), CTCHead(shape.hidden, vocab_size)
    checkpoint = out.with_suffix(".pt")
    torch.save(
        {"model": model.state_dict(), "ctc_head": head.state_dict(), "state": {"step": 0}, "shape": shape.as_dict()},
        checkpoint,
    )
    export_checkpoint(checkpoint, out)
    return sum(p.numel() for p in model.parameters()) + sum(p.numel() for p in head.parameters())


def lines_per_second(recognizer, images, repeats: int = 1) -> tuple[float, float]:
    """Lines per second of ``recognizer.recognize`` with capture (median of ``repeats`` passes), and
    the mean number of tokens kept per line (its attention maps' rows). Forced, every line decodes
    exactly ``min_new_tokens`` steps; a random model's special tokens among them are not kept."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        results = recognizer.recognize(images, capture=True)
        timings.append(time.perf_counter() - started)
    return len(images) / statistics.median(timings), statistics.mean(len(r.attention) for r in results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from benchmarks.recognizer_speed import benchmark_lines
    from worker.recognizer import Recognizer

    torch.set_num_threads(args.threads)
    images = benchmark_lines(args.lines)
    bundled = Recognizer.load(BUNDLED_MODEL, device="cpu")
    with torch.inference_mode():
        bundled.recognize(images[: bundled.batch_size])  # warm-up
        tokens = round(statistics.mean(len(r.tokens) for r in bundled.recognize(images)) + 1)  # + end of line
    readers = {}
    with tempfile.TemporaryDirectory() as scratch:
        parameters = {}
        for name, overrides in CANDIDATES.items():
            folder = Path(scratch) / name.replace(" ", "-")
            parameters[name] = export_random_model(overrides, folder)
            readers[name] = Recognizer.load(folder, device="cpu", max_new_tokens=tokens)
        bundled_forced = Recognizer.load(BUNDLED_MODEL, device="cpu", max_new_tokens=tokens)
        for recognizer in [*readers.values(), bundled_forced]:
            recognizer.min_new_tokens = tokens  # no line ends early
        readers["bundled model (forced)"] = bundled_forced
        speeds: dict[str, list[float]] = {name: [] for name in [*readers, "bundled model (its own length)"]}
        steps: dict[str, float] = {}
        with torch.inference_mode():
            for recognizer in readers.values():
                recognizer.recognize(images[: recognizer.batch_size])  # warm-up
            for _ in range(args.rounds):
                for name, recognizer in readers.items():
                    speed, steps[name] = lines_per_second(recognizer, images)
                    speeds[name].append(speed)
                speed, steps["bundled model (its own length)"] = lines_per_second(bundled, images)
                speeds["bundled model (its own length)"].append(speed)
    own = statistics.median(speeds["bundled model (its own length)"])
    forced = statistics.median(speeds["bundled model (forced)"])
    print(
        f"{len(images)} lines, {tokens} tokens each (the bundled model's mean), batch {bundled.batch_size}, "
        f"{args.threads} threads, capture on, median of {args.rounds} rounds"
    )
    print(
        f"{'model':<32}{'parameters':>12}{'tokens/line':>12}{'lines/s forced':>16}{'x bundled':>11}"
        f"{'expected lines/s':>18}"
    )
    for name in CANDIDATES:
        speed = statistics.median(speeds[name])
        print(
            f"{name:<32}{parameters[name] / 1e6:>11.1f}M{steps[name]:>12.1f}{speed:>16.1f}{speed / forced:>11.2f}"
            f"{own * speed / forced:>18.1f}"
        )
    forced_steps = steps["bundled model (forced)"]
    print(f"{'bundled model (forced)':<32}{'':>12}{forced_steps:>12.1f}{forced:>16.1f}{1.0:>11.2f}{own:>18.1f}")
    print(
        f"bundled model at its own length: {own:.1f} lines/s, {steps['bundled model (its own length)']:.1f} steps/line"
    )


if __name__ == "__main__":
    main()
