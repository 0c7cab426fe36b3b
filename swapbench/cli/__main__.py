"""`python -m swapbench.cli` = `bench`."""

from swapbench.cli import entry

entry()
