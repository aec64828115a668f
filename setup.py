"""Build the native allocation tracker into the package.

The tracker is a plain shared library that leakbench preloads into the target; it is built as an
extension so that `pip install .` compiles it with the machine's C compiler, but Python never imports it.
"""

import os
from glob import glob

from setuptools import Extension, find_packages, setup

setup(
    # The built-in playbooks live in the top-level playbooks/ folder and ship as leakbench.playbooks.
    packages=[*find_packages(include=["leakbench", "leakbench.*"]), "leakbench.playbooks"],
    package_dir={"leakbench.playbooks": "playbooks"},
    ext_modules=[
        Extension(
            "leakbench.native._tracker",
            sources=sorted(glob("native_tracker/src/*.c")),
            include_dirs=["native_tracker/src"],
            extra_compile_args=["-O2", "-fvisibility=hidden", "-pthread", "-std=gnu11", "-Wall", "-Wextra"],
            extra_link_args=["-pthread", "-ldl"],
        )
    ]
    # LEAKBENCH_NO_TRACKER=1 installs without the tracker (no C compiler): the native stage is then skipped.
    if glob("native_tracker/src/*.c") and not os.environ.get("LEAKBENCH_NO_TRACKER")
    else [],
)
