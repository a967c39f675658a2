"""Capturing one decoder layer's cross-attention during ``generate``: Inkwell's one coupling to
transformers' internals.

``generate(output_attentions=True)`` would also return every encoder self-attention map and force
the slow attention path everywhere; instead a forward hook on one cross-attention module
recomputes that layer's attention weights from the decoder queries and the keys already in the
cache. That reads attributes transformers does not promise to keep: the module's ``q_proj``,
``k_proj``, ``scaling``, ``num_heads``, ``head_dim`` and ``layer_idx``, the hook's ``hidden_states``
and ``past_key_values``/``cache`` arguments, and ``cache.cross_attention_cache.layers[i].keys``.
``tests/test_attention_capture.py`` compares the capture with the model's own attention weights,
so a transformers version that moves any of these fails there, loudly.
"""

from __future__ import annotations

from typing import Any

import torch


class CrossAttentionProbe:
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
        """batch x steps x source_len, on the CPU (the maps are stored as numpy arrays), and reset."""
        # One copy per batch: on a GPU, each line's maps would otherwise be copied apart.
        stacked = torch.stack(self.steps, dim=1).cpu() if self.steps else torch.zeros(0)
        self.steps = []
        return stacked


def cross_attention_modules(model: Any) -> list[torch.nn.Module]:
    """The decoder's cross-attention modules (TrOCR/BART-style ``encoder_attn``), in layer order."""
    found = [m for name, m in model.decoder.named_modules() if name.endswith("encoder_attn") and hasattr(m, "q_proj")]
    return found
