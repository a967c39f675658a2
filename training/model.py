"""Build the bundled model: a ViT line encoder and a TrOCR decoder in a VisionEncoderDecoderModel.

The encoder cuts the line into full-height columns ``patch_width`` pixels wide, so the patch
sequence reads left to right like the text; a linear CTC head over those patches (kept beside the
Hugging Face model, not inside it) teaches the encoder to align with characters early in training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from transformers import TrOCRConfig, TrOCRForCausalLM, VisionEncoderDecoderModel, ViTConfig, ViTModel

from training.charset import BOS_ID, EOS_ID, PAD_ID


@dataclass(frozen=True)
class ModelShape:
    """Sizes of the bundled model; chosen by measurement (see the model card)."""

    height: int = 64  # the bundled model's since run 9 (40 before): continuing it keeps its height
    width: int = 512
    patch_width: int = 4
    hidden: int = 256
    encoder_layers: int = 6
    encoder_heads: int = 4
    encoder_ffn: int = 1024
    decoder_layers: int = 3
    decoder_heads: int = 4
    decoder_ffn: int = 1024
    max_target_tokens: int = 160
    dropout: float = 0.1

    @property
    def frames(self) -> int:
        return self.width // self.patch_width

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)


def build_model(shape: ModelShape, vocab_size: int) -> VisionEncoderDecoderModel:
    """A randomly initialised VisionEncoderDecoderModel of ``shape`` for a ``vocab_size`` alphabet."""
    encoder_config = ViTConfig(
        image_size=(shape.height, shape.width),
        patch_size=(shape.height, shape.patch_width),
        num_channels=3,
        hidden_size=shape.hidden,
        num_hidden_layers=shape.encoder_layers,
        num_attention_heads=shape.encoder_heads,
        intermediate_size=shape.encoder_ffn,
        hidden_dropout_prob=shape.dropout,
        attention_probs_dropout_prob=0.0,
        qkv_bias=True,
    )
    decoder_config = TrOCRConfig(
        vocab_size=vocab_size,
        d_model=shape.hidden,
        decoder_layers=shape.decoder_layers,
        decoder_attention_heads=shape.decoder_heads,
        decoder_ffn_dim=shape.decoder_ffn,
        activation_function="gelu",
        max_position_embeddings=shape.max_target_tokens + 2,
        dropout=shape.dropout,
        attention_dropout=0.0,
        activation_dropout=0.0,
        use_learned_position_embeddings=True,
        layernorm_embedding=True,
        scale_embedding=False,
        cross_attention_hidden_size=shape.hidden,
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=BOS_ID,
        is_decoder=True,
        add_cross_attention=True,
    )
    model = VisionEncoderDecoderModel(
        encoder=ViTModel(encoder_config, add_pooling_layer=True),
        decoder=TrOCRForCausalLM(decoder_config),
    )
    _sinusoidal_positions(model.encoder.embeddings.position_embeddings)
    model.config.decoder_start_token_id = BOS_ID
    model.config.pad_token_id = PAD_ID
    model.config.eos_token_id = EOS_ID
    model.config.vocab_size = vocab_size
    generation = model.generation_config
    generation.decoder_start_token_id = BOS_ID
    generation.bos_token_id = BOS_ID
    generation.pad_token_id = PAD_ID
    generation.eos_token_id = EOS_ID
    generation.max_new_tokens = shape.max_target_tokens
    generation.use_cache = True
    generation.num_beams = 1
    generation.do_sample = False
    return model


@torch.no_grad()
def _sinusoidal_positions(table: nn.Parameter) -> None:
    """Start the encoder's learned position table from sines and cosines (1-D, left to right).

    A randomly initialised table tells the model nothing about which column is next to which;
    it learns that eventually, but a ViT trained from scratch on a few hundred thousand lines
    converges faster when neighbouring columns start with similar position vectors.
    """
    _, length, dim = table.shape
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10_000.0) / dim))
    values = torch.zeros(length, dim)
    values[:, 0::2] = torch.sin(position * frequency)
    values[:, 1::2] = torch.cos(position * frequency)
    table.copy_(0.5 * values.unsqueeze(0))


PATCH_PROJECTION = "encoder.embeddings.patch_embeddings.projection.weight"


@torch.no_grad()
def load_resized(model: VisionEncoderDecoderModel, state: dict[str, torch.Tensor]) -> bool:
    """Load ``state`` into ``model``, where the two may differ in input height only; return whether they did.

    Patches are full-height slices, so the height changes only the patch projection's kernel
    (hidden x channels x height x patch width): it is resized along the height and scaled so that
    a line scaled to the new height gives the patch vectors it gave at the old one (about; each
    kernel row then covers fewer pixels of the line). Every other weight is kept as it is.
    """
    state = dict(state)
    kernel, target = state[PATCH_PROJECTION], model.state_dict()[PATCH_PROJECTION]
    resized = kernel.shape != target.shape
    if resized:
        if kernel.shape[:2] != target.shape[:2] or kernel.shape[3] != target.shape[3]:
            raise ValueError(
                f"patch projections differ beyond their height: {tuple(kernel.shape)} and {tuple(target.shape)}"
            )
        scaled = nn.functional.interpolate(  # antialiased: to a smaller height every row still counts
            kernel.float(), size=tuple(target.shape[2:]), mode="bilinear", align_corners=False, antialias=True
        )
        state[PATCH_PROJECTION] = scaled * (kernel.shape[2] / target.shape[2])
    model.load_state_dict(state)
    return resized


class CTCHead(nn.Module):
    """Per-column character logits over the encoder's patch outputs (blank = the pad token)."""

    def __init__(self, hidden: int, vocab_size: int) -> None:
        super().__init__()
        self.projection = nn.Linear(hidden, vocab_size)

    def forward(self, patch_states: torch.Tensor) -> torch.Tensor:
        return self.projection(patch_states)
