"""`python -m promptlogic.cli`: the `promptlogic` command (how `serve` starts its worker)."""

from promptlogic.cli import main

main()
