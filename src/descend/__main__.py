"""`python -m descend` runs the command line."""

from .cli import main

main()
