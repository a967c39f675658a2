"""The image encoder's features at any depth, for retrieval, clustering or as input to other models.

Layers are numbered as in ``transformers``' ``output_hidden_states``: 0 is the patch embeddings
(with position embeddings), ``1..L`` the outputs of the L transformer blocks, and negative numbers
count from the end (-1 is the last block's output, *before* the encoder's final layer norm). The
encoder's final output (``last_hidden_state``, after that layer norm) is what the recognizer's
decoder reads; it is what Inkwell stores as embeddings unless ``INKWELL_EMBEDDING_LAYER`` names a
layer.

Pooling: ``mean`` averages the patch tokens (the CLS and, for DeiT, distillation tokens left out),
``cls`` takes the first token, ``none`` returns the patch grid ``rows x cols x hidden``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from PIL import Image

if TYPE_CHECKING:
    from worker.recognizer import Recognizer

Pool = Literal["mean", "cls", "none"]
POOLS: tuple[Pool, ...] = ("mean", "cls", "none")


def encoder_layer_count(recognizer: Recognizer) -> int:
    """Transformer blocks in the encoder (hidden states are numbered 0..this)."""
    return int(recognizer.model.config.encoder.num_hidden_layers)


def resolve_layer(layer: int, layer_count: int) -> int:
    """``layer`` as a non-negative hidden-state index; ValueError when the encoder has no such layer."""
    index = layer + layer_count + 1 if layer < 0 else layer
    if not 0 <= index <= layer_count:
        raise ValueError(
            f"layer {layer} does not exist: this encoder has layers 0..{layer_count} (or -1..-{layer_count + 1})"
        )
    return index


def pool_states(states: torch.Tensor, pool: Pool, prefix_tokens: int, grid: tuple[int, int]) -> torch.Tensor:
    """Pool ``batch x tokens x hidden`` hidden states: ``batch x hidden``, or ``batch x rows x cols x hidden``."""
    if pool == "mean":
        return states[:, prefix_tokens:].mean(dim=1)
    if pool == "cls":
        return states[:, 0]
    if pool == "none":
        rows, cols = grid
        return states[:, prefix_tokens:].reshape(states.shape[0], rows, cols, states.shape[-1])
    raise ValueError(f"pool must be one of {', '.join(POOLS)}, not {pool!r}")


@torch.inference_mode()
def encoder_features(
    recognizer: Recognizer, images: Sequence[Image.Image], layers: Sequence[int], pool: Pool = "mean"
) -> dict[int, np.ndarray]:
    """Per requested layer (keyed as given), the pooled features of every image as float32, in input order.

    Images are preprocessed exactly as for reading (see ``Recognizer.pixel_values``) and encoded in
    batches of ``recognizer.batch_size``.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, not {pool!r}")
    count = encoder_layer_count(recognizer)
    indices = {layer: resolve_layer(layer, count) for layer in layers}
    grid = recognizer.grid
    chunks: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
    for start in range(0, len(images), recognizer.batch_size):
        pixel_values, _ = recognizer.pixel_values(images[start : start + recognizer.batch_size])
        hidden = recognizer.model.encoder(pixel_values=pixel_values, output_hidden_states=True).hidden_states
        for layer, index in indices.items():
            pooled = pool_states(hidden[index].float(), pool, grid.prefix_tokens, (grid.rows, grid.cols))
            chunks[layer].append(pooled.cpu().numpy())
    hidden_size = int(recognizer.model.config.encoder.hidden_size)
    empty_shape = (0, hidden_size) if pool != "none" else (0, grid.rows, grid.cols, hidden_size)
    return {
        layer: np.concatenate(parts).astype(np.float32) if parts else np.zeros(empty_shape, np.float32)
        for layer, parts in chunks.items()
    }
