"""Hugging Face Inference Endpoints handler for the Inkwell handwriting model.

Copied into the exported model folder, so the folder can be published to the Hub as it is. It
depends only on ``transformers``, ``torch`` and Pillow (not on Inkwell). Call it with
``{"inputs": image}`` (a PIL image, raw image bytes, a base64 string, or a list of those); it
returns ``{"generated_text", "confidence"}`` per image. Where the folder ships a CTC head
(``inkwell.json``), lines are decoded jointly with it, as Inkwell itself does (``ctc_prefix.py``),
and where it declares a confidence calibration, confidences are computed as Inkwell computes
them (``worker/calibration.py``): temperature-scaled token probabilities, and the line's
probability of being read exactly from a logistic model over its signals.
"""

from __future__ import annotations

import base64
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, LogitsProcessorList, VisionEncoderDecoderModel


class EndpointHandler:
    def __init__(self, path: str = "") -> None:
        self.model = VisionEncoderDecoderModel.from_pretrained(path).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        processor = AutoImageProcessor.from_pretrained(path)
        self.height = processor.size["height"]
        self.width = processor.size["width"]
        self.fit_pad = getattr(processor, "inkwell_fit_pad", None) or {"fill": "mean", "grayscale": True}
        self.ctc = None
        manifest = Path(path) / "inkwell.json"
        entries = json.loads(manifest.read_text()) if manifest.exists() else {}
        self.calibration = entries.get("calibration") or {}
        declared = entries.get("ctc_head")
        if declared and declared.get("weight", 0) > 0:
            from safetensors.torch import load_file

            sys.path.insert(0, str(Path(path)))
            from ctc_prefix import CTCPrefixScorer

            tensors = load_file(str(Path(path) / declared["file"]))
            head = torch.nn.Linear(tensors["weight"].shape[1], tensors["weight"].shape[0])
            head.load_state_dict({k: v.float() for k, v in tensors.items()})
            self.ctc = (head.eval(), int(declared["blank_id"]), float(declared["weight"]), CTCPrefixScorer)

    def _to_input(self, image: Image.Image) -> np.ndarray:
        """Scale the line to fit height x width keeping its aspect ratio, pad the rest (as in training)."""
        image = image.convert("L" if self.fit_pad.get("grayscale", True) else "RGB")
        scale = min(self.height / image.height, self.width / image.width)
        size = (
            max(1, min(self.width, round(image.width * scale))),
            max(1, min(self.height, round(image.height * scale))),
        )
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        pixels = np.asarray(image, dtype=np.float32) / 255.0 * 2.0 - 1.0
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        fill = float(pixels.mean()) if self.fit_pad.get("fill", "mean") == "mean" else 0.0
        canvas = np.full((pixels.shape[2], self.height, self.width), fill, dtype=np.float32)
        top = (self.height - size[1]) // 2
        canvas[:, top : top + size[1], : size[0]] = pixels.transpose(2, 0, 1)
        return np.repeat(canvas[:1], 3, axis=0) if canvas.shape[0] == 1 else canvas

    @staticmethod
    def _image(value: Any) -> Image.Image:
        if isinstance(value, Image.Image):
            return value
        if isinstance(value, str):
            value = base64.b64decode(value)
        return Image.open(io.BytesIO(value))

    @torch.inference_mode()
    def __call__(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        inputs = data.get("inputs", data)
        images = [self._image(v) for v in (inputs if isinstance(inputs, list) else [inputs])]
        pixel_values = torch.from_numpy(np.stack([self._to_input(image) for image in images])).to(self.model.dtype)
        encoded = self.model.encoder(pixel_values=pixel_values)
        processors = []
        ctc_texts: list[str | None] = [None] * len(images)
        if self.ctc is not None:
            head, blank, weight, scorer = self.ctc
            log_probs = torch.log_softmax(head(encoded.last_hidden_state[:, 1:].float()), dim=-1)
            processors.append(scorer(log_probs, blank, self.tokenizer.eos_token_id, weight))
            ctc_texts = [self._ctc_text(row, blank) for row in log_probs.argmax(-1).tolist()]
        out = self.model.generate(
            encoder_outputs=encoded,
            logits_processor=LogitsProcessorList(processors),
            output_logits=True,
            return_dict_in_generate=True,
        )
        sequences = out.sequences[:, 1:]
        temperature = float(self.calibration.get("temperature", 1.0))
        logits = torch.stack(out.logits, dim=1).float() / temperature
        probs = logits.softmax(-1).gather(-1, sequences.unsqueeze(-1)).squeeze(-1)
        results = []
        for ids, p, ctc_text in zip(sequences.tolist(), probs.tolist(), ctc_texts):
            end = ids.index(self.tokenizer.eos_token_id) + 1 if self.tokenizer.eos_token_id in ids else len(ids)
            text = self.tokenizer.decode(ids[:end], skip_special_tokens=True).strip()
            results.append({"generated_text": text, "confidence": self._confidence(p[:end], text, ctc_text)})
        return results

    def _ctc_text(self, best: list[int], blank: int) -> str:
        ids = [token for k, token in enumerate(best) if token != blank and (k == 0 or token != best[k - 1])]
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def _confidence(self, scored: list[float], text: str, ctc_text: str | None) -> float:
        """Inkwell's line confidence: the calibrated line model where declared, else the geometric mean."""
        logs = [math.log(max(x, 1e-12)) for x in scored] or [0.0]
        line = self.calibration.get("line")
        if not line:
            return math.exp(sum(logs) / len(logs))
        agreement = 1.0 if ctc_text is None else 1.0 - _edit_distance(text, ctc_text) / max(len(text), len(ctc_text), 1)
        signals = {
            "mean_log_prob": sum(logs) / len(logs),
            "min_log_prob": min(logs),
            "ctc_agreement": agreement,
            "log_length": math.log1p(len(text)),
        }
        score = line["bias"] + sum(w * signals[name] for w, name in zip(line["weights"], line["signals"]))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, score))))


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (the service uses rapidfuzz; this folder must run without it)."""
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return previous[-1]
