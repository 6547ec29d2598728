"""`python -m tiein.cli`: the same as the `tiein` command."""

from tiein.cli import main

main()
