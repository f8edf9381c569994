"""`python -m loadtests.cli`: the same as the `poolcheck` command."""

from loadtests.cli import main

main()
