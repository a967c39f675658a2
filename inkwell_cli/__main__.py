"""``python -m inkwell_cli`` is the ``inkwell`` command."""

from inkwell_cli.cli import main

main()
