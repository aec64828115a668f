"""Prints what a program sees of its own launch, so a test can compare it with a plain `python` run."""

import json
import os
import sys

print(
    json.dumps(
        {
            "argv": sys.argv,
            "path0": sys.path[0],
            "name": __name__,
            "file": __file__,
            "cwd": os.getcwd(),
            "stdin": sys.stdin.read(),
            "main_module": sys.modules["__main__"].__dict__.get("MARK"),
        }
    )
)
MARK = 1
sys.exit(3)
