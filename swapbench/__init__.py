"""swapbench: a fair, reproducible benchmark for face-swap methods."""

__version__ = "0.1.0"
