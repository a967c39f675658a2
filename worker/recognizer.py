"""Read text lines with any Hugging Face VisionEncoderDecoder (TrOCR-family) checkpoint.

``Recognizer`` is pure: PIL images in, :class:`LineResult` dataclasses out; it knows nothing of
queues or databases. One instance is loaded per worker process and reused for every batch.

For each line it returns the text, per-token probabilities, the decoder's cross-attention of
every generated token over the encoder's patch grid, and an image embedding. Capturing these
does not use ``generate(output_attentions=True)``, which would also return every encoder
self-attention map and force the slow attention path everywhere: the encoder runs once here
(giving the embedding), its output is handed to ``generate``, and a hook on one decoder layer's
cross-attention recomputes that layer's attention weights from the decoder queries and the keys
already in the cache.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from transformers import LogitsProcessorList
from transformers.modeling_outputs import BaseModelOutput

from worker.calibration import Calibration, line_signals
from worker.features import Pool, encoder_features, encoder_layer_count, resolve_layer
from worker.line_image import line_to_input

log = logging.getLogger(__name__)

Preprocessing = Literal["auto", "processor", "fit-pad"]


@dataclass(frozen=True)
class TokenResult:
    """One generated token: its text piece and the model's probability for it."""

    text: str
    confidence: float


@dataclass
class LineResult:
    """What the model read in one line image.

    ``attention`` is ``tokens x grid_h x grid_w`` float32: for each generated token, the chosen
    decoder layer's cross-attention (mean over heads) over the encoder patches that cover the
    line image, each row summing to 1; stretched over the line image it shows where the model
    looked. ``embedding`` is the L2-normalised mean of the encoder's patch states: of its final
    output, or of the hidden layer the recognizer's ``embedding_layer`` names (see worker.features).
    """

    text: str
    confidence: float
    tokens: list[TokenResult] = field(default_factory=list)
    attention: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))
    embedding: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    signals: dict[str, float] = field(default_factory=dict)  # what the confidence was computed from


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


def _dtype_for(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


class _CrossAttentionProbe:
    """Forward hook on one cross-attention module that keeps that layer's attention weights."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.steps: list[torch.Tensor] = []  # each: batch x source_len, mean over heads
        self.enabled = False
        self.handle = module.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict, _output: Any) -> None:
        if not self.enabled:
            return
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        keys = None
        if cache is not None and hasattr(cache, "cross_attention_cache"):
            layer = cache.cross_attention_cache.layers[module.layer_idx]
            keys = layer.keys  # batch x heads x source x head_dim, written by this very call
        if keys is None:
            states = kwargs.get("key_value_states")
            batch = states.shape[0]
            keys = module.k_proj(states).view(batch, -1, module.num_heads, module.head_dim).transpose(1, 2)
        batch, length, _ = hidden.shape
        queries = (
            (module.q_proj(hidden) * module.scaling)
            .view(batch, length, module.num_heads, module.head_dim)
            .transpose(1, 2)
        )
        weights = torch.softmax(queries.float() @ keys.float().transpose(-1, -2), dim=-1)  # b x h x t x s
        self.steps.append(weights[:, :, -1].mean(dim=1))

    def take(self) -> torch.Tensor:
        """batch x steps x source_len, and reset."""
        stacked = torch.stack(self.steps, dim=1) if self.steps else torch.zeros(0)
        self.steps = []
        return stacked


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
        self.decoder_start_token_id = _first_not_none(
            generation.decoder_start_token_id,
            config.decoder_start_token_id,
            config.decoder.decoder_start_token_id,
            config.decoder.bos_token_id,
        )
        self.eos_token_id = _first_not_none(
            generation.eos_token_id, config.eos_token_id, config.decoder.eos_token_id, tokenizer.eos_token_id
        )
        self.pad_token_id = _first_not_none(
            generation.pad_token_id, config.pad_token_id, config.decoder.pad_token_id, tokenizer.pad_token_id
        )
        self.grid = _patch_grid(config.encoder, fit_pad)
        self._special_ids = {
            i for i in (self.eos_token_id, self.pad_token_id, self.decoder_start_token_id) if i is not None
        }
        self._special_ids |= set(getattr(tokenizer, "all_special_ids", []))
        layers = _cross_attention_modules(model)
        self._probe = _CrossAttentionProbe(layers[attention_layer]) if layers else None
        # None: embeddings are the encoder's final output; else this hidden-state index (0..layers).
        self.embedding_layer = (
            None if embedding_layer is None else resolve_layer(embedding_layer, encoder_layer_count(self))
        )
        # Called after each recognize() with (lines, seconds): the worker's metrics hang here.
        self.observer: Callable[[int, float], None] | None = None

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
        model = VisionEncoderDecoderModel.from_pretrained(source, dtype=_dtype_for(target))
        model.to(target).eval()
        image_processor = AutoImageProcessor.from_pretrained(source)
        tokenizer = AutoTokenizer.from_pretrained(source)
        model.generation_config.use_cache = True
        fit_pad = _fit_pad_from(image_processor, preprocessing)
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
                for k, result in zip(chunk, self._decode([encoded[k] for k in chunk], capture)):
                    results[indices[k]] = result
        if self.observer is not None:
            self.observer(len(images), time.perf_counter() - started)
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
        lengths = _ctc_greedy_lengths(log_probs, self.ctc.blank_id).tolist()
        return [
            _EncodedLine(states[row], region, log_probs[row], lengths[row], pooled[row])
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
                min_new_tokens=min_new_tokens,
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
        ctc_texts = (
            [self._ctc_text(line.ctc_log_probs) for line in lines] if self.ctc is not None else [None] * len(lines)
        )
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

    def _ctc_text(self, log_probs: torch.Tensor) -> str:
        """The CTC head's greedy reading of one line: best label per frame, repeats merged, blanks dropped."""
        best = log_probs.argmax(dim=-1).tolist()
        ids = [token for k, token in enumerate(best) if token != self.ctc.blank_id and (k == 0 or token != best[k - 1])]  # type: ignore[union-attr]
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
    predicted_length: int = 0  # tokens in the CTC head's greedy reading
    embedding_states: torch.Tensor | None = None  # tokens x hidden the embedding is pooled from


def _ctc_greedy_lengths(log_probs: torch.Tensor, blank_id: int) -> torch.Tensor:
    """Tokens in each row's greedy CTC reading: best label per frame, repeats merged, blanks dropped."""
    best = log_probs.argmax(dim=-1)
    new = torch.ones_like(best, dtype=torch.bool)
    new[:, 1:] = best[:, 1:] != best[:, :-1]
    return ((best != blank_id) & new).sum(dim=1)


@dataclass
class CTCHead:
    """A linear CTC head over the encoder's patches, shipped beside some checkpoints for joint decoding."""

    projection: torch.nn.Linear
    blank_id: int
    weight: float

    MANIFEST = "inkwell.json"

    @classmethod
    def load(cls, source: str, device: torch.device, weight: float | None) -> CTCHead | None:
        """The head declared in the checkpoint's ``inkwell.json``, or None (none, or ``weight == 0``)."""
        manifest = _checkpoint_file(source, cls.MANIFEST)
        if manifest is None or weight == 0:
            return None
        declared = json.loads(manifest.read_text()).get("ctc_head")
        if not declared:
            return None
        weights_file = _checkpoint_file(source, declared["file"])
        if weights_file is None:
            raise FileNotFoundError(f"{source}: {declared['file']} is declared in {cls.MANIFEST} but missing")
        from safetensors.torch import load_file

        tensors = load_file(str(weights_file))
        projection = torch.nn.Linear(tensors["weight"].shape[1], tensors["weight"].shape[0])
        projection.load_state_dict(tensors)
        projection.to(device, torch.float32).eval()
        return cls(projection, int(declared["blank_id"]), float(declared["weight"] if weight is None else weight))

    def log_probs(self, patch_states: torch.Tensor) -> torch.Tensor:
        """batch x patches x vocabulary log-probabilities (on the CPU, where the prefix scorer runs)."""
        return torch.log_softmax(self.projection(patch_states.float()), dim=-1).cpu()


def load_calibration(source: str) -> Calibration | None:
    """The confidence calibration declared in the checkpoint's ``inkwell.json``, if any."""
    manifest = _checkpoint_file(source, CTCHead.MANIFEST)
    if manifest is None:
        return None
    return Calibration.from_manifest(json.loads(manifest.read_text()).get("calibration"))


def _checkpoint_file(source: str, filename: str) -> Path | None:
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
class _Grid:
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


def _patch_grid(encoder_config: Any, fit_pad: FitPad | None) -> _Grid:
    height, width = _pair(encoder_config.image_size)
    patch_h, patch_w = _pair(encoder_config.patch_size)
    prefix = 2 if encoder_config.model_type == "deit" else 1
    return _Grid(
        height // patch_h, width // patch_w, patch_h, patch_w, prefix, int(getattr(encoder_config, "num_channels", 3))
    )


def _fit_pad_from(image_processor: Any, preprocessing: Preprocessing) -> FitPad | None:
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


def _cross_attention_modules(model: Any) -> list[torch.nn.Module]:
    """The decoder's cross-attention modules (TrOCR/BART-style ``encoder_attn``), in layer order."""
    found = [m for name, m in model.decoder.named_modules() if name.endswith("encoder_attn") and hasattr(m, "q_proj")]
    return found


def _first_not_none(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None
