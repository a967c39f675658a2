"""Fit a model's confidence calibration on held-out lines and write it into its ``inkwell.json``.

    python -m training calibrate [--model worker/models/inkwell-handwriting-small]

1. Temperature: the decoder reads each calibration line with the truth as its previous tokens
   (teacher forcing); the temperature minimising the truth's negative log-likelihood is kept.
2. Line model: the recognizer reads the lines as in service (temperature applied), and a
   logistic model of "read exactly" over the line's signals (worker.calibration.SIGNALS) is
   fitted; its bias is then lowered, if needed, until ``flag_share`` of the lines with an error
   fall below the review threshold.

The calibration lines are held-out-font lines (forms and English prose) drawn with another
seed than the evaluation's, and no real line, so that the figures `evaluate` prints for real
writers measure the calibration on material it was not fitted on.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from inkwell.progress import progress
from training.evaluate import DEFAULT_THRESHOLD
from training.validation_sets import CALIBRATION_SEED, LineSet, heldout_font_sets
from worker.calibration import Calibration, fit_line_model, review_shares

log = logging.getLogger(__name__)

TEMPERATURES = tuple(round(0.6 + 0.1 * k, 2) for k in range(35))  # 0.6 .. 4.0


@torch.inference_mode()
def fit_temperature(recognizer, sets: list[LineSet], batch_size: int = 32) -> float:
    """The temperature (from TEMPERATURES) minimising the truth's NLL under teacher forcing."""
    tokenizer, model = recognizer.tokenizer, recognizer.model
    totals = torch.zeros(len(TEMPERATURES), dtype=torch.float64)
    temperatures = torch.tensor(TEMPERATURES, dtype=torch.float32)
    for line_set in progress(sets, desc="temperature", unit=" sets"):
        for start in range(0, len(line_set.images), batch_size):
            images = line_set.images[start : start + batch_size]
            texts = line_set.texts[start : start + batch_size]
            pixel_values, _ = recognizer.pixel_values(images)
            encoded = tokenizer(texts, padding=True, return_tensors="pt")
            labels = encoded.input_ids.to(recognizer.device)
            mask = encoded.attention_mask.to(recognizer.device).bool()
            starts = torch.full((labels.shape[0], 1), recognizer.decoder_start_token_id, device=labels.device)
            decoder_input = torch.cat([starts, labels[:, :-1]], dim=1)
            logits = model(pixel_values=pixel_values, decoder_input_ids=decoder_input).logits.float()
            scaled = logits.unsqueeze(0) / temperatures.to(logits.device).view(-1, 1, 1, 1)
            nll = (
                -torch.log_softmax(scaled, dim=-1)
                .gather(-1, labels.unsqueeze(0).unsqueeze(-1).expand(len(TEMPERATURES), -1, -1, 1))
                .squeeze(-1)
            )
            totals += (nll * mask.unsqueeze(0)).sum(dim=(1, 2)).double().cpu()
    best = int(totals.argmin())
    log.info(
        "temperature %.2f (summed NLL of the truth tokens: %.1f at 1.0, %.1f at best)",
        TEMPERATURES[best],
        totals[TEMPERATURES.index(1.0)],
        totals[best],
    )
    return TEMPERATURES[best]


def calibrate(
    model_dir: Path,
    fonts_dir: Path,
    lines_per_font: int = 30,
    threshold: float = DEFAULT_THRESHOLD,
    flag_share: float = 0.87,
) -> Calibration:
    """Fit temperature and line model on calibration lines; write them into ``model_dir/inkwell.json``."""
    from worker.recognizer import Recognizer

    sets = heldout_font_sets(
        fonts_dir, forms_per_font=lines_per_font, prose_per_font=lines_per_font // 2, seed=CALIBRATION_SEED
    )
    recognizer = Recognizer.load(model_dir, device="auto", max_new_tokens=160, calibrated=False)
    temperature = fit_temperature(recognizer, sets)
    recognizer.calibration = Calibration(temperature=temperature)
    signals, exact = [], []
    for line_set in progress(sets, desc="line model", unit=" sets"):
        for result, truth in zip(recognizer.recognize(line_set.images, capture=False), line_set.texts, strict=True):
            signals.append(result.signals)
            exact.append(result.text == truth)
    weights, bias = fit_line_model(signals, exact, threshold, flag_share)
    calibration = Calibration(temperature=temperature, weights=weights, bias=bias)
    confidences = [calibration.line_confidence(s, []) for s in signals]
    flagged_wrong, flagged_right = review_shares(confidences, exact, threshold)
    print(
        f"calibrated on {len(exact)} lines ({sum(exact)} exact): temperature {temperature}, "
        f"at threshold {threshold} {flagged_wrong:.1%} of lines with an error flagged, {flagged_right:.1%} of exact "
        "lines"
    )
    manifest_path = model_dir / "inkwell.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest["calibration"] = calibration.as_manifest()
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return calibration
