"""The built-in stages; each registers through the `leakbench.stages` entry points like any plugin."""
