"""Progress bars for the command line (tqdm): drawn on standard error when it is a terminal, and
nothing at all otherwise (pipes, logs, CI), so output meant for programs stays clean."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def progress(items: Iterable | None = None, *, logs: bool = False, **options: Any):
    """A tqdm bar over ``items`` (or a manual one with ``total=``) that is silent off a terminal.

    ``logs=True``: while the bar is drawn, log records are printed above it instead of through it
    (until ``close()``).
    """
    from tqdm import tqdm

    bar = tqdm(items, file=sys.stderr, disable=None, dynamic_ncols=True, **options)
    if logs and not bar.disable:
        from tqdm.contrib.logging import logging_redirect_tqdm

        redirect = logging_redirect_tqdm()
        redirect.__enter__()
        close = bar.close

        def close_and_restore() -> None:
            close()
            redirect.__exit__(None, None, None)

        bar.close = close_and_restore
    return bar


def echo_above(text: str, err: bool = False) -> None:
    """Print a line (to standard output, or error) without tearing a progress bar being drawn."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr if err else sys.stdout)
