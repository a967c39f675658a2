"""The one coupling to transformers' internals (worker.attention_capture), checked against the
model's own attention weights: a transformers version that moves what the capture reads fails here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from transformers import VisionEncoderDecoderModel

from tests.tiny_models import render_text_line
from worker.attention_capture import CrossAttentionProbe, cross_attention_modules
from worker.recognizer import Recognizer


def test_captured_cross_attention_equals_the_models_own(tiny_char_model: Path) -> None:
    recognizer = Recognizer.load(tiny_char_model, device="cpu", max_new_tokens=16)
    modules = cross_attention_modules(recognizer.model)
    assert modules, f"transformers {transformers.__version__}: no decoder cross-attention modules found"
    probe = CrossAttentionProbe(modules[-1])
    pixels, _ = recognizer.pixel_values([render_text_line("hello world"), render_text_line("Jane Doe")])
    probe.enabled = True
    try:
        with torch.inference_mode():
            generated = recognizer.model.generate(
                pixel_values=pixels,
                max_new_tokens=16,
                decoder_start_token_id=recognizer.decoder_start_token_id,
                eos_token_id=recognizer.eos_token_id,
                pad_token_id=recognizer.pad_token_id,
                use_cache=True,  # the production path: keys come from the cache
                num_beams=1,
                do_sample=False,
                return_dict_in_generate=True,
            )
    finally:
        probe.enabled = False
        probe.handle.remove()
    captured = probe.take()  # batch x steps x source
    steps = generated.sequences.shape[1] - 1
    assert captured.shape[:2] == (2, steps), (
        f"transformers {transformers.__version__}: the hook saw {captured.shape[1]} steps for {steps} tokens"
    )
    # The reference: the same weights with the eager attention path, asked for its attention weights.
    eager = VisionEncoderDecoderModel.from_pretrained(tiny_char_model, attn_implementation="eager").eval()
    with torch.inference_mode():
        reference = eager(pixel_values=pixels, decoder_input_ids=generated.sequences[:, :-1], output_attentions=True)
    expected = reference.cross_attentions[-1].mean(dim=1)  # batch x steps x source, mean over heads
    assert torch.allclose(captured, expected, atol=1e-4), (
        f"transformers {transformers.__version__}: the captured cross-attention differs from the model's own "
        f"(largest difference {float((captured - expected).abs().max()):.3g}); see worker/attention_capture.py"
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_reading_with_capture_on_a_gpu_gives_maps_on_the_host(tiny_char_model: Path) -> None:
    """The maps are captured on the GPU and stored as numpy arrays: they must come back to the host
    first (a worker on a GPU failed its first batch with capture until they did)."""
    recognizer = Recognizer.load(tiny_char_model, device="cuda", max_new_tokens=16)
    [result] = recognizer.recognize([render_text_line("hello world")], capture=True)
    assert isinstance(result.attention, np.ndarray)
    assert result.attention.shape[0] == len(result.tokens)
