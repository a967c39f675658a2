"""Command line of the training pipeline: ``python -m training COMMAND`` (``--help`` lists them).

``python -m training all`` reruns the bundled model's first recipe from scratch (not the
continuations that followed, listed in its model card): fetch fonts and render the synthetic
lines, prepare the real ones, train (resuming from var/training/runs/main if it was interrupted),
export to worker/models/inkwell-handwriting-small, calibrate its confidences and print the CER per
held-out set and style group.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from inkwell.paths import BUNDLED_MODEL
from training.fonts import STYLE_GROUPS, check_style_weight
from training.model import ModelShape

DEFAULT_ROOT = Path("var/training")


def _style_weight(value: str) -> tuple[str, float]:
    """``GROUP=W`` from the command line, checked."""
    group, _, weight = value.partition("=")
    try:
        number = float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"weight of {group} must be a number, got {weight!r}") from None
    try:
        check_style_weight(group, number)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return group, number


def _at_least(least: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than ``least``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if number < least:
            raise argparse.ArgumentTypeError(f"must be {least} or more, got {number}")
        return number

    return parse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="fonts, shards and checkpoints (not in git)")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="render synthetic lines and prepare real ones into shards")
    data.add_argument("--synthetic-lines", type=int, default=400_000)
    data.add_argument("--workers", type=int, default=2)
    data.add_argument(
        "--first-shard",
        type=int,
        default=0,
        help="index of the first synthetic shard (each index renders other lines: continue a model on unseen ones)",
    )
    data.add_argument(
        "--shard-lines",
        type=int,
        default=10_000,
        help="lines per synthetic shard (smaller: a concurrent run sees them sooner)",
    )
    data.add_argument("--real-parts", type=int, default=4, help="shards the real training lines are split into")
    data.add_argument(
        "--style-weight",
        action="append",
        default=[],
        type=_style_weight,
        metavar="GROUP=W",
        help=f"draw the families of a style group W times as often ({', '.join(STYLE_GROUPS)}); repeatable",
    )
    data.add_argument(
        "--height", type=int, default=ModelShape.height, help="height the lines are stored at: the model's input height"
    )

    train = sub.add_parser("train", help="train (resumes from the last checkpoint under --root)")
    train.add_argument("--run", default="main", help="run name: checkpoints go to ROOT/runs/RUN")
    train.add_argument("--hours", type=float, default=6.0, help="length of the learning-rate schedule")
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--ctc-weight", type=float, default=0.5)
    train.add_argument("--real-share", type=float, default=0.3, help="share of each batch drawn from real lines")
    train.add_argument("--encoder-layers", type=int, default=ModelShape.encoder_layers)
    train.add_argument("--decoder-layers", type=int, default=ModelShape.decoder_layers)
    train.add_argument("--hidden", type=int, default=ModelShape.hidden)
    train.add_argument(
        "--height",
        type=int,
        default=ModelShape.height,
        help="input line height (px); the shards must be made at it (data --height); --init-from a model of "
        "another height resizes its patch projection (gpu-bundle keeps real lines at 64 px: raise --real-height "
        "for a taller input)",
    )
    train.add_argument("--eval-every", type=int, default=1000, help="steps between validation runs")
    train.add_argument(
        "--snapshot-every",
        type=_at_least(0),
        default=0,
        help="keep a weights-only snapshot every N steps and at the end, for export --average (0: none)",
    )
    train.add_argument(
        "--keep-snapshots",
        type=_at_least(1),
        default=4,
        help="how many of the latest snapshots are kept (default 4; at least the K of export --average)",
    )
    train.add_argument("--eval-lines", type=int, default=400, help="lines of each validation set read at each run")
    train.add_argument("--eval-batch", type=int, default=64, help="batch size of the validation runs")
    train.add_argument("--threads", type=int, default=2)
    train.add_argument(
        "--no-bf16",
        action="store_true",
        help="train in fp32 (default: bf16 autocast where the device computes it natively: a GPU with bf16, "
        "a CPU with AVX-512; an AVX2-only CPU emulates it, far slower)",
    )
    train.add_argument(
        "--init-from", type=Path, default=None, help="start from an exported model folder (no checkpoint yet)"
    )
    train.add_argument(
        "--device", default="auto", help="auto (a GPU where torch sees one, else the CPU), cpu, cuda, cuda:1, ..."
    )
    train.add_argument(
        "--prefetch",
        choices=("auto", "on", "off"),
        default="auto",
        help="draw the next batch in a thread during each step (auto: on a GPU only)",
    )
    train.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="what --hours counts: wall seconds of training, or this process's CPU seconds (equal budgets when shared)",
    )

    evaluate = sub.add_parser("evaluate", help="CER per held-out set and style group, and review-flag shares")
    evaluate.add_argument("--model", type=Path, default=BUNDLED_MODEL)
    evaluate.add_argument("--forms-per-font", type=int, default=30, help="form lines per held-out font family")
    evaluate.add_argument("--prose-per-font", type=int, default=10, help="English prose lines per held-out font family")
    evaluate.add_argument("--real-limit", type=int, default=0, help="real lines per collection (0 = all)")
    evaluate.add_argument(
        "--ctc-weight",
        type=float,
        default=None,
        help="joint decoding weight (default: the model's; 0: attention alone)",
    )
    evaluate.add_argument(
        "--threshold", type=float, default=0.8, help="review threshold the flag shares are measured at"
    )
    evaluate.add_argument(
        "--trained-fonts",
        type=int,
        default=0,
        help="also read this many trained families, reported apart as a fit check (not validation)",
    )

    calibrate = sub.add_parser(
        "calibrate", help="fit confidence calibration on held-out lines into the model's inkwell.json"
    )
    calibrate.add_argument("--model", type=Path, default=BUNDLED_MODEL)
    calibrate.add_argument("--lines-per-font", type=int, default=30)
    calibrate.add_argument("--threshold", type=float, default=0.8)
    calibrate.add_argument(
        "--flag-share",
        type=float,
        default=0.87,
        # 0.91 flagged 96.6% of erroneous but 33.2% of exact validation lines with the run-6 export; 0.87: 94.5% / 23.6%
        help="share of the fitting lines with an error to put under the threshold",
    )

    export = sub.add_parser(
        "export", help="write a run's best checkpoint (or its averaged snapshots) as a Hugging Face model folder"
    )
    export.add_argument("--run", default="main")
    export.add_argument("--out", type=Path, default=BUNDLED_MODEL)
    export.add_argument(
        "--ctc-weight", type=float, default=0.5, help="joint CTC/attention decoding weight the export declares (0: off)"
    )
    export.add_argument(
        "--average",
        type=_at_least(0),
        default=0,
        metavar="K",
        help="export the mean weights of the run's last K snapshots (train --snapshot-every); 0: best.pt",
    )

    everything = sub.add_parser("all", help="the whole recipe: data, train, export, evaluate (resumable)")
    everything.add_argument("--hours", type=float, default=5.0)
    everything.add_argument("--synthetic-lines", type=int, default=300_000)

    sub.add_parser(
        "lock-fonts", help="pin every font family to the registry's latest version (training/font_versions.json)"
    )

    bundle = sub.add_parser(
        "gpu-bundle", help="fonts, reduced real lines, English prose and wheels for scripts/gpu_train.sh (see README)"
    )
    bundle.add_argument("--out", type=Path, default=Path("var/gpu-bundle"))
    bundle.add_argument("--real-height", type=int, default=64, help="real lines are reduced to this height (px)")
    bundle.add_argument("--real-quality", type=int, default=50, help="WebP quality of the reduced real lines")
    bundle.add_argument(
        "--real-limit", type=int, default=0, help="keep only this many real lines, evenly spread (0: all)"
    )
    bundle.add_argument(
        "--python-version", default="3.12", help="the Python the wheels are for (the GPU machine's: 3.12)"
    )
    bundle.add_argument("--no-wheels", action="store_true", help="leave the wheels out (no package index here)")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shape = ModelShape()
    if args.command == "data":
        from training.data import DataPlan, build_all

        build_all(
            DataPlan(
                args.root,
                args.synthetic_lines,
                args.height,
                shape.width,
                args.workers,
                args.first_shard,
                shard_lines=args.shard_lines,
                real_parts=args.real_parts,
                style_weights=tuple(args.style_weight),
            )
        )
    elif args.command == "train":
        from training.train import TrainConfig
        from training.train import train as run_training

        shape = ModelShape(
            height=args.height,
            encoder_layers=args.encoder_layers,
            decoder_layers=args.decoder_layers,
            hidden=args.hidden,
            # feed-forward 4x the width, as in the bundled shape and benchmarks.model_capacity's
            encoder_ffn=4 * args.hidden,
            decoder_ffn=4 * args.hidden,
        )
        run_training(
            TrainConfig(
                root=args.root,
                run=args.run,
                shape=shape,
                hours=args.hours,
                batch_size=args.batch_size,
                lr=args.lr,
                ctc_weight=args.ctc_weight,
                real_share=args.real_share,
                eval_every=args.eval_every,
                snapshot_every=args.snapshot_every,
                keep_snapshots=args.keep_snapshots,
                eval_lines=args.eval_lines,
                eval_batch=args.eval_batch,
                threads=args.threads,
                bf16=False if args.no_bf16 else None,
                init_from=args.init_from,
                device=args.device,
                clock=args.clock,
                prefetch={"auto": None, "on": True, "off": False}[args.prefetch],
            )
        )
    elif args.command == "evaluate":
        from training.evaluate import evaluate_exported

        evaluate_exported(
            args.model,
            args.root / "fonts",
            args.forms_per_font,
            args.prose_per_font,
            args.real_limit,
            ctc_weight=args.ctc_weight,
            threshold=args.threshold,
            trained_fonts=args.trained_fonts,
        )
    elif args.command == "calibrate":
        from training.calibrate import calibrate as run_calibration

        run_calibration(args.model, args.root / "fonts", args.lines_per_font, args.threshold, args.flag_share)
    elif args.command == "export":
        from training.export import export_run

        export_run(args.root / "runs" / args.run, args.out, args.ctc_weight, average=args.average)
    elif args.command == "lock-fonts":
        from training.fonts import HELDOUT_FONTS, TRAINING_FONTS, lock_font_versions

        versions = lock_font_versions(sorted(TRAINING_FONTS + HELDOUT_FONTS))
        print(f"{len(versions)} families pinned")
    elif args.command == "gpu-bundle":
        from training.gpu_bundle import BundlePlan, build_bundle

        build_bundle(
            BundlePlan(
                out=args.out,
                fonts_dir=args.root / "fonts",
                real_height=args.real_height,
                real_quality=args.real_quality,
                real_limit=args.real_limit,
                python_version=args.python_version,
                wheels=not args.no_wheels,
            )
        )
    elif args.command == "all":
        from training.calibrate import calibrate as run_calibration
        from training.data import DataPlan, build_all
        from training.evaluate import evaluate_exported
        from training.export import export_run
        from training.train import TrainConfig
        from training.train import train as run_training

        build_all(DataPlan(args.root, args.synthetic_lines, shape.height, shape.width))
        run_training(TrainConfig(root=args.root, run="main", shape=shape, hours=args.hours))
        export_run(args.root / "runs" / "main", BUNDLED_MODEL)
        run_calibration(BUNDLED_MODEL, args.root / "fonts")
        evaluate_exported(BUNDLED_MODEL, args.root / "fonts")


if __name__ == "__main__":
    main()
