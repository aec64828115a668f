"""leakbench: run a memory-leak investigation on a Python program and write one incident report."""

__version__ = "0.1.0"
