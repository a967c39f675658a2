"""The ``inkwell`` command line: the entry point above the core (inkwell/), the web app (webui/)
and the workers (worker/), so that the core never imports either of them."""

from inkwell_cli.cli import main

__all__ = ["main"]
