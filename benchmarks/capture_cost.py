"""What attention and embedding capture costs, measured in one process so that machine noise
between processes (±15% on shared 2-core machines) does not swamp it.

    python -m benchmarks.capture_cost [--model PATH_OR_HUB_ID] [--lines 64] [--pairs 6] [--ctc-weight W]

Alternates passes over the same lines with and without capture (the order flips every pair) and
prints the median ratio of their times. A measurement, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

from inkwell.paths import BUNDLED_MODEL


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(BUNDLED_MODEL))
    parser.add_argument("--lines", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--ctc-weight", type=float, default=None, help="default: the model's; 0: attention decoder alone"
    )
    args = parser.parse_args(argv)

    import torch

    from benchmarks.recognizer_speed import benchmark_lines
    from worker.recognizer import Recognizer

    torch.set_num_threads(args.threads)
    images = benchmark_lines(args.lines)
    recognizer = Recognizer.load(
        args.model, device=args.device, batch_size=args.batch_size, max_new_tokens=128, ctc_weight=args.ctc_weight
    )
    ratios = []
    with torch.inference_mode():
        for capture in (True, False):  # warm-up at the full batch shape
            recognizer.recognize(images[: recognizer.batch_size], capture=capture)
        for pair in range(args.pairs):
            seconds = {}
            for capture in (True, False) if pair % 2 else (False, True):
                started = time.perf_counter()
                recognizer.recognize(images, capture=capture)
                seconds[capture] = time.perf_counter() - started
            ratios.append(seconds[True] / seconds[False])
    decoding = "attention alone" if args.ctc_weight == 0 else "joint CTC/attention" if recognizer.ctc else "attention"
    print(
        f"model {args.model}  device {recognizer.device}  lines {len(images)}  batch {recognizer.batch_size}  decoding "
        f"{decoding}"
    )
    print(
        f"capture costs {(statistics.median(ratios) - 1) * 100:+.1f}% time (median of {len(ratios)} alternating pairs; "
        f"min {(min(ratios) - 1) * 100:+.1f}%, max {(max(ratios) - 1) * 100:+.1f}%)"
    )


if __name__ == "__main__":
    main()
