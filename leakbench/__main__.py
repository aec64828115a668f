"""`python -m leakbench` runs the command line."""

from leakbench.cli import run

run()
