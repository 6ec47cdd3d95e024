"""`python -m fusekit` is the `fusekit` command."""

from .cli import main

main()
