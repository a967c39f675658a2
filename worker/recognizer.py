"""Read text lines with any Hugging Face VisionEncoderDecoder (TrOCR-family) checkpoint.

``Recognizer`` is pure: PIL images in, :class:`LineResult` dataclasses out; it knows nothing of
queues or databases. One instance is loaded per worker process and reused for every batch.

For each line it returns the text, per-token probabilities, the decoder's cross-attention of
every generated token over the encoder's patch grid, and an image embedding: the encoder runs
once here (giving the embedding), its output is handed to ``generate``, and one decoder layer's
cross-attention is captured on the way (worker.attention_capture).

This module is the reading itself (batching, regrouping, generation, results); what a checkpoint
declares is read by worker.checkpoint, the CTC head lives in worker.ctc_head.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import LogitsProcessorList
from transformers.modeling_outputs import BaseModelOutput

from worker.attention_capture import CrossAttentionProbe, cross_attention_modules
from worker.calibration import Calibration, line_signals
from worker.checkpoint import (
    CPU_BATCH_SIZE,
    FitPad,
    Preprocessing,
    batch_size_for_memory,
    dtype_for,
    first_not_none,
    fit_pad_from,
    load_calibration,
    patch_grid,
    resolve_device,
)
from worker.ctc_head import CTCHead, ctc_greedy_ids
from worker.features import Pool, encoder_features, encoder_layer_count, resolve_layer
from worker.line_image import line_to_input
from worker.line_result import LineResult, RecognitionError, TokenResult, checked_results

log = logging.getLogger(__name__)

# Re-exported: callers name them from here (the documented ``worker.recognizer`` API).
__all__ = ["CTCHead", "FitPad", "LineResult", "RecognitionError", "Recognizer", "TokenResult", "resolve_device"]


class Recognizer:
    """A loaded checkpoint, ready to read batches of line images."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        tokenizer: Any,
        device: torch.device,
        name: str,
        max_new_tokens: int = 128,
        batch_size: int = 32,
        fit_pad: FitPad | None = None,
        attention_layer: int = -1,
        ctc: CTCHead | None = None,
        calibration: Calibration | None = None,
        embedding_layer: int | None = None,
    ) -> None:
        self.model = model
        self.ctc = ctc
        self.calibration = calibration or Calibration()
        self.processor = processor
        self.tokenizer = tokenizer
        self.device = device
        self.name = name
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.fit_pad = fit_pad
        config = model.config
        generation = model.generation_config
        self.decoder_start_token_id = first_not_none(
            generation.decoder_start_token_id,
            config.decoder_start_token_id,
            config.decoder.decoder_start_token_id,
            config.decoder.bos_token_id,
        )
        self.eos_token_id = first_not_none(
            generation.eos_token_id, config.eos_token_id, config.decoder.eos_token_id, tokenizer.eos_token_id
        )
        self.pad_token_id = first_not_none(
            generation.pad_token_id, config.pad_token_id, config.decoder.pad_token_id, tokenizer.pad_token_id
        )
        self.grid = patch_grid(config.encoder, fit_pad)
        self._special_ids = {
            i for i in (self.eos_token_id, self.pad_token_id, self.decoder_start_token_id) if i is not None
        }
        self._special_ids |= set(getattr(tokenizer, "all_special_ids", []))
        layers = cross_attention_modules(model)
        self._probe = CrossAttentionProbe(layers[attention_layer]) if layers else None
        # None: embeddings are the encoder's final output; else this hidden-state index (0..layers).
        self.embedding_layer = (
            None if embedding_layer is None else resolve_layer(embedding_layer, encoder_layer_count(self))
        )
        # Called after each recognize() with (lines, seconds): the worker's metrics hang here.
        self.observer: Callable[[int, float], None] | None = None
        # Set only to measure: every line then decodes at least this many tokens (no early end).
        self.min_new_tokens: int | None = None

    @classmethod
    def load(
        cls,
        name_or_path: str | Path,
        device: str = "auto",
        *,
        max_new_tokens: int = 128,
        batch_size: int | None = None,
        preprocessing: Preprocessing = "auto",
        attention_layer: int = -1,
        ctc_weight: float | None = None,
        calibrated: bool = True,
        embedding_layer: int | None = None,
    ) -> Recognizer:
        """Load a VisionEncoderDecoder checkpoint (local folder or Hub id) with its processor.

        CUDA runs in bf16 (fp16 where bf16 is unsupported), the CPU in fp32. Token ids for
        starting, padding and ending are read from the checkpoint; ``use_cache`` is forced on
        (several Microsoft checkpoints ship it off, which makes decoding many times slower).
        ``batch_size=None`` chooses one: 32 on the CPU; on a GPU, as many lines as fit in 70% of
        its free memory, measured with a worst-case probe batch. A checkpoint that ships a CTC
        head (``inkwell.json``) is decoded jointly with it (see worker.ctc_prefix) at the weight it
        declares, or ``ctc_weight``; ``ctc_weight=0`` decodes with the attention decoder alone.
        Confidences are calibrated as the checkpoint declares (see worker.calibration) unless
        ``calibrated=False``. ``embedding_layer`` picks the encoder layer whose mean-pooled states
        are the embeddings (numbered as in worker.features; None: the encoder's final output).
        """
        from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

        target = resolve_device(device)
        source = str(name_or_path)
        model = VisionEncoderDecoderModel.from_pretrained(source, dtype=dtype_for(target))
        model.to(target).eval()
        image_processor = AutoImageProcessor.from_pretrained(source)
        tokenizer = AutoTokenizer.from_pretrained(source)
        model.generation_config.use_cache = True
        fit_pad = fit_pad_from(image_processor, preprocessing)
        log.info(
            "loaded %s on %s (%s, preprocessing %s)", source, target, model.dtype, "fit-pad" if fit_pad else "processor"
        )
        # A local folder is named by its folder name (paths differ between machines), a Hub model by its id.
        name = Path(source).name if Path(source).is_dir() else source
        ctc = CTCHead.load(source, target, ctc_weight)
        calibration = load_calibration(source) if calibrated else None
        recognizer = cls(
            model,
            image_processor,
            tokenizer,
            target,
            name,
            max_new_tokens,
            batch_size or CPU_BATCH_SIZE,
            fit_pad,
            attention_layer,
            ctc,
            calibration,
            embedding_layer,
        )
        if batch_size is None and target.type == "cuda":
            recognizer.batch_size = recognizer.measure_batch_size()
            log.info("batch size %d chosen for %s", recognizer.batch_size, target)
        return recognizer

    # -- public API ----------------------------------------------------------------------------

    def recognize(self, images: Sequence[Image.Image], capture: bool = True) -> list[LineResult]:
        """Read each line image; results come back in the order of ``images``.

        Lines are encoded in batches of ``batch_size`` in order of aspect ratio; with a CTC head,
        they are then regrouped for decoding by the length its greedy reading predicts, so that
        lines decoded together end at similar steps (``generate`` runs every line of a batch
        until the longest ends: on real lines at batch 32 that was 70% useful work grouped by
        width, 87% grouped by true length). ``capture=False`` skips attention and embeddings
        (they are then empty) for callers that only want text.
        """
        if not images:
            return []
        started = time.perf_counter()
        order = sorted(range(len(images)), key=lambda i: images[i].width / max(images[i].height, 1))
        results: list[LineResult | None] = [None] * len(images)
        window = self.batch_size * REGROUP_WINDOW_BATCHES  # bounds the encoder outputs held at once
        for start in range(0, len(order), window):
            indices = order[start : start + window]
            encoded = [
                line
                for s in range(0, len(indices), self.batch_size)
                for line in self._encode([images[i] for i in indices[s : s + self.batch_size]])
            ]
            if self.ctc is not None:
                regrouped = sorted(range(len(indices)), key=lambda k: encoded[k].predicted_length)
            else:
                regrouped = list(range(len(indices)))
            for s in range(0, len(regrouped), self.batch_size):
                chunk = regrouped[s : s + self.batch_size]
                decoded = checked_results(self._decode([encoded[k] for k in chunk], capture), len(chunk))
                for k, result in zip(chunk, decoded, strict=True):
                    results[indices[k]] = result
        if self.observer is not None:
            self.observer(len(images), time.perf_counter() - started)
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:  # a result on the wrong line is worse than no result: never hand back fewer
            raise RecognitionError(f"no result for {len(missing)} of {len(images)} lines (first: {missing[0]})")
        return [r for r in results if r is not None]

    def features(
        self, images: Sequence[Image.Image], layers: Sequence[int] = (-1,), pool: Pool = "mean"
    ) -> dict[int, np.ndarray]:
        """The encoder's features of each image at each of ``layers`` (see worker.features).

        Returns ``{layer: array}``: ``images x hidden`` for ``pool='mean'`` or ``'cls'``, the patch
        grid ``images x rows x cols x hidden`` for ``pool='none'``; float32, in input order.
        """
        return encoder_features(self, images, layers, pool)

    def measure_batch_size(self, probe: int = 8, share: float = 0.7, cap: int = 512) -> int:
        """Lines per batch that fit the GPU: memory of a worst-case probe batch, scaled to free memory.

        The probe uses full-width blank lines and forces generation to ``max_new_tokens``,
        so its memory is what the longest real batch needs.
        """
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        height, width = self.input_size
        blank = [Image.new("RGB", (width, height), "white")] * probe
        self._recognize_batch(blank, capture=True, min_new_tokens=self.max_new_tokens)
        per_line = max(1, (torch.cuda.max_memory_allocated(self.device) - base) / probe)
        free, _ = torch.cuda.mem_get_info(self.device)
        return batch_size_for_memory(free, per_line, share, cap)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the model input."""
        return self.grid.input_height, self.grid.input_width

    # -- internals -----------------------------------------------------------------------------

    def pixel_values(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, list[tuple[int, int, int, int]]]:
        """Model inputs and, per image, the patch rows/columns ``(r0, r1, c0, c1)`` its content covers."""
        grid = self.grid
        if self.fit_pad is None:
            rgb = [image.convert("RGB") for image in images]
            pixels = self.processor(images=rgb, return_tensors="pt").pixel_values
            regions = [(0, grid.rows, 0, grid.cols)] * len(images)
        else:
            fp = self.fit_pad
            arrays, regions = [], []
            for image in images:
                array, placement = line_to_input(
                    image, fp.height, fp.width, fp.fill, fp.grayscale, grid.channels, fp.mean, fp.std
                )
                arrays.append(array)
                r0 = placement.top // grid.patch_height
                r1 = max(r0 + 1, math.ceil((placement.top + placement.content_height) / grid.patch_height))
                c1 = max(1, math.ceil(placement.content_width / grid.patch_width))
                regions.append((r0, min(r1, grid.rows), 0, min(c1, grid.cols)))
            pixels = torch.from_numpy(np.stack(arrays))
        return pixels.to(self.device, self.model.dtype), regions

    def _recognize_batch(
        self, images: Sequence[Image.Image], capture: bool, min_new_tokens: int | None = None
    ) -> list[LineResult]:
        return self._decode(self._encode(images), capture, min_new_tokens)

    @torch.inference_mode()
    def _encode(self, images: Sequence[Image.Image]) -> list[_EncodedLine]:
        """Run the encoder (and the CTC head, if any) over one batch; split the outputs per line."""
        pixel_values, regions = self.pixel_values(images)
        output = self.model.encoder(pixel_values=pixel_values, output_hidden_states=self.embedding_layer is not None)
        states = output.last_hidden_state
        # The states the embedding is pooled from: the final output, or the chosen hidden layer.
        pooled = states if self.embedding_layer is None else output.hidden_states[self.embedding_layer]
        if self.ctc is None:
            return [
                _EncodedLine(states[row], region, embedding_states=pooled[row]) for row, region in enumerate(regions)
            ]
        log_probs = self.ctc.log_probs(states[:, self.grid.prefix_tokens :])
        readings = ctc_greedy_ids(log_probs, self.ctc.blank_id)
        return [
            _EncodedLine(states[row], region, log_probs[row], readings[row], pooled[row])
            for row, region in enumerate(regions)
        ]

    @torch.inference_mode()
    def _decode(
        self, lines: Sequence[_EncodedLine], capture: bool, min_new_tokens: int | None = None
    ) -> list[LineResult]:
        """Decode one batch of encoded lines with ``generate``, capturing what ``capture`` asks for."""
        states = torch.stack([line.states for line in lines])
        encoded = BaseModelOutput(last_hidden_state=states)
        regions = [line.region for line in lines]
        probe = self._probe if capture else None
        processors = []
        if self.ctc is not None:
            from worker.ctc_prefix import CTCPrefixScorer

            log_probs = torch.stack([line.ctc_log_probs for line in lines])
            processors.append(CTCPrefixScorer(log_probs, self.ctc.blank_id, self.eos_token_id, self.ctc.weight))
        if probe is not None:
            probe.enabled = True
        try:
            generated = self.model.generate(
                logits_processor=LogitsProcessorList(processors),
                encoder_outputs=encoded,
                max_new_tokens=self.max_new_tokens,
                decoder_start_token_id=self.decoder_start_token_id,
                eos_token_id=self.eos_token_id,
                pad_token_id=self.pad_token_id,
                use_cache=True,
                num_beams=1,
                do_sample=False,
                min_new_tokens=min_new_tokens if min_new_tokens is not None else self.min_new_tokens,
                output_logits=True,
                return_dict_in_generate=True,
            )
        finally:
            if probe is not None:
                probe.enabled = False
        attention = probe.take() if probe is not None else None
        sequences = generated.sequences[:, 1:].cpu()  # drop the decoder start token
        logits = torch.stack(generated.logits, dim=1).float() / self.calibration.temperature  # batch x steps x vocab
        chosen = (
            torch.softmax(logits, dim=-1)
            .gather(-1, sequences[:, : logits.shape[1]].to(logits.device).unsqueeze(-1))
            .squeeze(-1)
            .cpu()
        )
        embeddings = None
        if capture:
            patches = torch.stack([line.embedding_states for line in lines])[:, self.grid.prefix_tokens :].float()
            embeddings = torch.nn.functional.normalize(patches.mean(dim=1), dim=-1).cpu().numpy()
        ctc_texts = [self._ctc_text(line.ctc_ids) if self.ctc is not None else None for line in lines]
        results = []
        for row, region in enumerate(regions):
            results.append(
                self._line_result(
                    sequences[row],
                    chosen[row],
                    attention[row] if attention is not None else None,
                    region,
                    embeddings[row] if embeddings is not None else None,
                    ctc_texts[row],
                )
            )
        return results

    def _ctc_text(self, ids: list[int]) -> str:
        """The CTC head's greedy reading of one line (its ids from ctc_greedy_ids) as text."""
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def _line_result(
        self,
        ids: torch.Tensor,
        probs: torch.Tensor,
        attention: torch.Tensor | None,
        region,
        embedding,
        ctc_text: str | None = None,
    ) -> LineResult:
        ids_list = ids.tolist()
        length = len(ids_list)
        ended = False
        if self.eos_token_id in ids_list:
            length = ids_list.index(self.eos_token_id)
            ended = True
        content = [i for i in range(length) if ids_list[i] not in self._special_ids]
        token_ids = [ids_list[i] for i in content]
        token_probs = [float(probs[i]) for i in content]
        tokens = []
        previous = ""
        for count, probability in enumerate(token_probs, start=1):
            # Decode growing prefixes: byte-level BPE pieces and spaces come out right.
            text_so_far = self.tokenizer.decode(token_ids[:count], skip_special_tokens=True)
            tokens.append(TokenResult(text_so_far[len(previous) :], probability))
            previous = text_so_far
        scored = token_probs + ([float(probs[length])] if ended and length < len(probs) else [])
        text = previous.strip()
        signals = line_signals(scored, text, ctc_text)
        confidence = self.calibration.line_confidence(signals, scored)
        result = LineResult(text=text, confidence=confidence, tokens=tokens, signals=signals)
        if attention is not None and attention.numel():
            grid = self.grid
            maps = attention[content, grid.prefix_tokens :].reshape(len(content), grid.rows, grid.cols)
            r0, r1, c0, c1 = region
            maps = maps[:, r0:r1, c0:c1]
            maps = maps / maps.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)
            result.attention = maps.numpy().astype(np.float32)
        else:
            result.attention = np.zeros((0, 0, 0), np.float32)
        if embedding is not None:
            result.embedding = embedding.astype(np.float32)
        return result


# Batches of lines encoded before regrouping them by predicted length (see Recognizer.recognize).
REGROUP_WINDOW_BATCHES = 8


@dataclass
class _EncodedLine:
    """One line's encoder output, where its content lies on the patch grid, and its CTC reading."""

    states: torch.Tensor  # tokens x hidden: the encoder's last hidden state
    region: tuple[int, int, int, int]
    ctc_log_probs: torch.Tensor | None = None  # patches x vocabulary
    ctc_ids: list[int] = field(default_factory=list)  # the CTC head's greedy reading
    embedding_states: torch.Tensor | None = None  # tokens x hidden the embedding is pooled from

    @property
    def predicted_length(self) -> int:
        """Tokens in the CTC head's greedy reading: lines of similar length are decoded together."""
        return len(self.ctc_ids)
