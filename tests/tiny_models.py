"""Tiny VisionEncoderDecoder checkpoints built from configs and trained for seconds, for tests.

Two kinds cover what real checkpoints differ in:
- ``char``: ViT encoder with full-height column patches, character tokenizer, aspect-preserving
  fit-and-pad preprocessing, decoder start token 0 (like Inkwell's bundled model);
- ``bpe``: DeiT encoder (two prefix tokens) with square patches, a byte-level BPE tokenizer, the
  image processor's squash-resize, decoder start token 2 (like Microsoft's TrOCR checkpoints).

Each is saved with ``save_pretrained`` and loaded back through ``Recognizer.load``, the same
``from_pretrained`` path real checkpoints take, then trained until it reads its training lines;
so tests can assert the exact text that comes back through the whole service.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

TEXTS = ("hello world", "Form 42", "Jane Doe", "12/05/2024", "yes", "Paris 75001", "total 9.50", "ink")


def render_text_line(text: str, height: int = 32, font_size: int = 22) -> Image.Image:
    """A clean black-on-white line of ``text`` in Pillow's built-in font."""
    font = ImageFont.load_default(size=font_size)
    width = int(font.getlength(text)) + 12
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).text((6, (height - font_size) // 2 - 1), text, font=font, fill="black")
    return image


def _char_model(folder: Path) -> None:
    from transformers import (
        TrOCRConfig,
        TrOCRForCausalLM,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
        ViTModel,
    )

    from training.charset import build_tokenizer

    tokenizer = build_tokenizer(folder)
    encoder = ViTModel(
        ViTConfig(
            image_size=(32, 256),
            patch_size=(32, 8),
            num_channels=3,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=128,
        ),
        add_pooling_layer=True,
    )
    decoder = TrOCRForCausalLM(
        TrOCRConfig(
            vocab_size=len(tokenizer),
            d_model=64,
            decoder_layers=1,
            decoder_attention_heads=2,
            decoder_ffn_dim=128,
            max_position_embeddings=64,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            decoder_start_token_id=0,
            use_learned_position_embeddings=True,
            layernorm_embedding=True,
            is_decoder=True,
            add_cross_attention=True,
        )
    )
    model = VisionEncoderDecoderModel(encoder=encoder, decoder=decoder)
    model.config.decoder_start_token_id, model.config.pad_token_id, model.config.eos_token_id = 0, 1, 2
    model.save_pretrained(folder)
    ViTImageProcessor(
        size={"height": 32, "width": 256},
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
        inkwell_fit_pad={"fill": "mean", "grayscale": True},
    ).save_pretrained(folder)


def _bpe_model(folder: Path) -> None:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (
        DeiTConfig,
        DeiTModel,
        PreTrainedTokenizerFast,
        TrOCRConfig,
        TrOCRForCausalLM,
        VisionEncoderDecoderModel,
        ViTImageProcessor,
    )

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        list(TEXTS) * 20, vocab_size=300, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>"]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    tokenizer.save_pretrained(folder)
    encoder = DeiTModel(
        DeiTConfig(
            image_size=(32, 128),
            patch_size=16,
            num_channels=3,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=128,
        ),
        add_pooling_layer=True,
    )
    decoder = TrOCRForCausalLM(
        TrOCRConfig(
            vocab_size=len(tokenizer),
            d_model=64,
            decoder_layers=2,
            decoder_attention_heads=2,
            decoder_ffn_dim=128,
            max_position_embeddings=64,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            decoder_start_token_id=2,
            is_decoder=True,
            add_cross_attention=True,
        )
    )
    model = VisionEncoderDecoderModel(encoder=encoder, decoder=decoder)
    model.config.decoder_start_token_id, model.config.pad_token_id, model.config.eos_token_id = 2, 1, 2
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 128}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(
        folder
    )


def build_tiny_model(kind: str, folder: Path, steps: int = 400, seed: int = 0) -> Path:
    """Create, train and save a tiny ``kind`` ('char' or 'bpe') model in ``folder``; return it."""
    from worker.recognizer import Recognizer

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (_char_model if kind == "char" else _bpe_model)(folder)
    recognizer = Recognizer.load(folder, device="cpu", max_new_tokens=32)
    model, tokenizer = recognizer.model, recognizer.tokenizer
    images = [render_text_line(text) for text in TEXTS]
    pixel_values, _ = recognizer.pixel_values(images)
    labels = tokenizer(list(TEXTS), padding=True, return_tensors="pt").input_ids
    if kind == "bpe":  # byte-level BPE adds no end token by itself
        labels = torch.cat([labels, torch.full((labels.shape[0], 1), tokenizer.pad_token_id)], dim=1)
        for row, text in enumerate(TEXTS):
            labels[row, len(tokenizer(text).input_ids)] = tokenizer.eos_token_id
    labels = labels.masked_fill(labels == tokenizer.pad_token_id, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(pixel_values=pixel_values, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(folder)
    return folder
