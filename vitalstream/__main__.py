"""`python -m vitalstream …`: the command line, for subprocesses started with this interpreter."""

from vitalstream.cli import main

main()
