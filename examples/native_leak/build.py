"""Compile leakyext.c into an importable extension next to it (once), with the machine's C compiler."""

import os
import subprocess
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))


def ensure_built():
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    target = os.path.join(HERE, "build", "leakyext" + suffix)
    source = os.path.join(HERE, "leakyext.c")
    if not os.path.exists(target) or os.path.getmtime(target) < os.path.getmtime(source):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        compiler = os.environ.get("CC", "cc")
        include = sysconfig.get_paths()["include"]
        subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-g", f"-I{include}", source, "-o", target], check=True)
    return os.path.dirname(target)
