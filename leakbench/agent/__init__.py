"""The in-target agent: guest code that runs inside the user's program.

Everything in this folder runs in the target's own interpreter, which may not have leakbench installed:
it imports only the standard library, and is loaded by file path, never as the `leakbench` package.
"""
