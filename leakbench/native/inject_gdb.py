"""Run by gdb's own Python (`gdb -p PID -batch -x inject_gdb.py`): queue one line of Python source in the
attached interpreter as a pending call, from a point where calling into the process is safe.

gdb stops every thread wherever it was, often inside a system call (a sleep, a select); a function called
there would end that system call with an error the program never expected. So nothing is called at once:
breakpoints are set on functions of the interpreter that a thread enters only with the GIL held and outside
any system call, the process runs on until one is hit (or the wait is over), the breakpoints are removed,
and only then, on that thread, is a page mapped for the source, the source written into it by gdb, and
`Py_AddPendingCall(PyRun_SimpleString, page)` called. The interpreter runs it in its main thread between
two bytecodes. The result goes to the JSON file named by LEAKBENCH_INJECT_RESULT.

Written for the Python that gdb embeds (any 3.x): standard library and gdb's module only.
"""

import contextlib
import json
import os
import signal
import threading
from typing import Any

import gdb

# Entered with the GIL held, by any thread that runs Python code: before a blocking call (PyEval_SaveThread),
# after it (PyEval_RestoreThread), and on allocating or freeing objects.
SAFE_POINTS = ("PyEval_SaveThread", "PyEval_RestoreThread", "PyObject_Free", "PyObject_Malloc")
PROT_READ_WRITE = 3
MAP_PRIVATE_ANONYMOUS = 0x22


def main() -> dict[str, Any]:
    source = os.environ["LEAKBENCH_INJECT_SOURCE"].encode() + b"\0"
    wait = float(os.environ.get("LEAKBENCH_INJECT_WAIT", "10"))
    result: dict[str, Any] = {"queued": False}
    try:
        for command in ("set pagination off", "set confirm off", "set scheduler-locking off"):
            gdb.execute(command)
        # The target's own signals go on to it, as if no debugger were there (SIGINT ends the wait below)
        gdb.execute("handle all nostop noprint pass")
        points = []
        for name in SAFE_POINTS:
            with contextlib.suppress(gdb.error):
                points.append(gdb.Breakpoint(name, internal=True))
        if not points:
            result["error"] = "none of the interpreter's functions were found in the process"
            return result
        # The wait is ended by interrupting gdb, as Ctrl-C would: the process stops where it is, and nothing
        # is called there.
        timer = threading.Timer(wait, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        try:
            gdb.execute("continue")
        except (gdb.error, KeyboardInterrupt):
            pass
        finally:
            timer.cancel()
        reached = any(p.hit_count for p in points)
        for p in points:
            p.delete()
        result["reached"] = reached
        if not reached:
            return result
        gdb.execute("set scheduler-locking on")  # only this thread runs during the calls
        here = int(gdb.parse_and_eval("(long)$pc"))
        size = 4096 * (len(source) // 4096 + 1)
        page = _call("mmap", (0, size, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0), here)
        if page in (0, -1):
            result["error"] = "mmap failed in the process"
            return result
        gdb.selected_inferior().write_memory(page, source)
        run_source = int(gdb.parse_and_eval("(long)&PyRun_SimpleString"))
        queued = _call("Py_AddPendingCall", (run_source, page), here)
        result["page"] = page
        result["queued"] = queued & 0xFFFFFFFF == 0  # an int, in the low half of rax
        if not result["queued"]:
            result["error"] = "the interpreter's queue of pending calls is full"
        return result
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        return result


ARGUMENT_REGISTERS = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
SAVED_REGISTERS = (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    "eflags", "rip",
)  # fmt: skip


def _call(function: str, args: tuple[int, ...], here: int) -> int:
    """Call `function` on the stopped thread and return what it returns (x86-64, integer arguments).

    gdb's own `call` saves and restores every register, the vector ones too, and some kernels refuse that
    ("Couldn't write extended state status"). The thread is stopped at the entry of a function that takes
    no floating-point argument, where the vector registers hold nothing the code relies on (the ABI lets
    any call clobber them), so the general registers are all that need saving: the call is set up by hand,
    returning to `here` (the entry it stopped at), where a breakpoint catches it; then they are put back."""
    saved = {
        r: int(gdb.parse_and_eval(f"(long)(int)${r}" if r == "eflags" else f"(long)${r}")) for r in SAVED_REGISTERS
    }
    address = int(gdb.parse_and_eval(f"(long)&{function}"))
    # Below the red zone and whatever the caller keeps there; aligned as at a call: rsp + 8 on 16 bytes
    sp = ((saved["rsp"] - 4096) & ~0xF) - 8
    gdb.selected_inferior().write_memory(sp, here.to_bytes(8, "little"))
    for register, value in zip(ARGUMENT_REGISTERS, args, strict=False):
        gdb.execute(f"set ${register} = {value}")
    gdb.execute("set $rax = 0")
    gdb.execute(f"set $rsp = {sp}")
    gdb.execute(f"set $pc = {address}")
    back = gdb.Breakpoint(f"*{here}", internal=True)
    try:
        for _ in range(100):  # a signal for this thread stops it on the way; it is passed on
            gdb.execute("continue")
            if int(gdb.parse_and_eval("(long)$pc")) == here and int(gdb.parse_and_eval("(long)$rsp")) == sp + 8:
                break
        else:
            raise RuntimeError(f"{function} did not return")
        value = int(gdb.parse_and_eval("(long)$rax"))
    finally:
        back.delete()
    for register, old in saved.items():
        gdb.execute(f"set ${'pc' if register == 'rip' else register} = {old}")
    return value


def _write(result: dict[str, Any]) -> None:
    path = os.environ.get("LEAKBENCH_INJECT_RESULT")
    if path:
        with open(path, "w") as handle:
            json.dump(result, handle)


try:
    _write(main())
finally:
    try:
        gdb.execute("set scheduler-locking off")
        gdb.execute("detach")
    except Exception:
        pass
