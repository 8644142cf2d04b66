"""``python -m kgrec``: the command line (kgrec.cli)."""

from .cli import main

main()
