"""The bundled model's alphabet, text normalisation, and its character-level tokenizer."""

from __future__ import annotations

import string
import unicodedata
from pathlib import Path

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0..3, as in TrOCR's tokenizers
BOS_ID, PAD_ID, EOS_ID, UNK_ID = range(4)

LETTERS_EXTRA = "àâäáãåæçèéêëìíîïñòóôöõøùúûüýÿœßÀÂÄÁÃÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÖÕØÙÚÛÜÝŒ"
SYMBOLS_EXTRA = "€£°§¢¥µ±×÷²³½¼¾"
ALPHABET = "".join(sorted(set(string.printable[:95] + LETTERS_EXTRA + SYMBOLS_EXTRA)))

# Typographic variants folded onto what a form reader should output.
_FOLD = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u00a0": " ",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u017f": "s",
    }
)


def normalise_text(text: str) -> str:
    """NFC, typographic quotes/dashes folded to ASCII, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFC", text).translate(_FOLD).split())


def in_alphabet(text: str) -> bool:
    """True when every character of ``text`` can be written with the bundled model's tokens."""
    return all(c in _ALPHABET_SET for c in text)


_ALPHABET_SET = frozenset(ALPHABET)


def build_tokenizer(save_dir: Path | None = None):  # -> transformers.PreTrainedTokenizerFast
    """A character-level ``PreTrainedTokenizerFast``: one token per character, spaces included.

    Built with the ``tokenizers`` library (WordLevel over single characters, a Split
    pre-tokenizer that isolates every character, and a Fuse decoder that joins them without
    spaces), so ``AutoTokenizer.from_pretrained`` loads it like any Hub tokenizer.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    for char in ALPHABET:
        vocab[char] = len(vocab)
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", EOS_ID)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
        model_max_length=256,
    )
    if save_dir is not None:
        tokenizer.save_pretrained(save_dir)
    return tokenizer
