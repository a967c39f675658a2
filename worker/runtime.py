"""Per-process state of a worker: settings, database and the model, each created once per process."""

from __future__ import annotations

import logging
import sys
from functools import lru_cache
from typing import TYPE_CHECKING

from inkwell.config import Settings, get_settings
from inkwell.db import Database
from inkwell.queue import forget_inherited_broker_connections
from worker.line_finder import LineFinder
from worker.pipeline import PageLimits

if TYPE_CHECKING:
    from worker.recognizer import Recognizer

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def database() -> Database:
    """This process's database handle."""
    return Database(get_settings())


@lru_cache(maxsize=1)
def recognizer() -> Recognizer:
    """This process's model, loaded on first use and then kept for every later batch."""
    from worker.metrics import observe_recognition

    loaded = load_recognizer(get_settings())
    loaded.observer = observe_recognition
    return loaded


@lru_cache(maxsize=1)
def line_finder() -> LineFinder:
    """This process's text-line detector, loaded on first use."""
    return LineFinder()


def page_limits(settings: Settings) -> PageLimits:
    return PageLimits(settings.max_image_pixels, settings.pdf_dpi, settings.max_page_attempts)


def load_recognizer(settings: Settings, model: str | None = None) -> Recognizer:
    """Load the configured (or given) model with the configured generation settings."""
    from worker.recognizer import Recognizer

    return Recognizer.load(
        model or settings.model,
        settings.device,
        max_new_tokens=settings.max_new_tokens,
        batch_size=settings.recognize_batch_size or None,
        preprocessing=settings.preprocessing,
        attention_layer=settings.attention_layer,
        ctc_weight=settings.ctc_weight,
        embedding_layer=settings.embedding_layer,
    )


def after_fork() -> None:
    """In a freshly forked worker child: never reuse the parent's database or broker connections."""
    if database.cache_info().currsize:
        database().dispose()
    forget_inherited_broker_connections()


def quiet_libraries_off_terminal() -> None:
    """Off a terminal, also silence the bars transformers and huggingface_hub draw (loading weights, downloads)."""
    if sys.stderr.isatty():  # a person is watching: the bars say what is happening
        return
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as transformers_logging

    disable_progress_bars()
    transformers_logging.disable_progress_bar()
