"""``python -m inkwell`` is the ``inkwell`` command."""

from inkwell.cli import main

main()
