"""After-the-run symbolisation: return addresses to function names (ELF symbol tables, read here) and,
on request, to file:line (addr2line, when the machine has it and the object has debug info); then the
merge of native and Python frames into one stack, Python frames placed where the interpreter ran them.
"""

from __future__ import annotations

import bisect
import contextlib
import mmap
import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from leakbench.native.capture import Capture, CodeInfo, Module, ModuleMap, PyFrameRef, RawStack

EVAL_FUNCTION = "_PyEval_EvalFrameDefault"  # its native frames are replaced by the Python frames they ran
# CPython 3.14's tail-calling interpreter (built with clang) runs each opcode in a function of its own,
# above _PyEval_EvalFrameDefault: part of the eval loop, left out of merged stacks.
TAIL_CALL_PREFIX = "_TAIL_CALL_"


@dataclass(frozen=True, slots=True)
class StackFrame:
    """One frame of a merged stack (innermost first in a stack)."""

    kind: Literal["python", "native"]
    function: str
    file: str  # Python source file; for native frames the source file if known, else ""
    line: int  # 0 when unknown
    module: str = ""  # shared object of a native frame
    address: int = 0  # return address of a native frame

    def label(self) -> str:
        if self.kind == "python":
            return f"{self.function} ({self.file}:{self.line})"
        where = f"{self.file}:{self.line}" if self.file else os.path.basename(self.module) or "?"
        return f"{self.function} ({where})"


@dataclass(frozen=True, slots=True)
class NativeSymbol:
    name: str  # "0x…" when no symbol covers the address
    module: str
    offset: int  # address in the object's own terms (what addr2line wants)


class _ElfSymbols:
    """Function symbols of one ELF file, sorted by address (.symtab, else .dynsym; build-id debug file
    preferred when installed)."""

    __slots__ = ("has_debug_info", "names", "path", "sizes", "starts")

    def __init__(self, path: str) -> None:
        self.path = path
        self.starts: list[int] = []
        self.sizes: list[int] = []
        self.names: list[str] = []
        self.has_debug_info = False
        with contextlib.suppress(OSError, ValueError, struct.error):
            self._load(path)

    def _load(self, path: str) -> None:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            sections = _sections(data)
            debug = _build_id_debug_file(data, sections)
            self.has_debug_info = any(name == ".debug_line" for name, *_ in sections)
            if debug is not None:
                with open(debug, "rb") as g, mmap.mmap(g.fileno(), 0, access=mmap.ACCESS_READ) as dbg:
                    dsections = _sections(dbg)
                    if self._read_symbols(dbg, dsections, 2):
                        self.has_debug_info = self.has_debug_info or any(n == ".debug_line" for n, *_ in dsections)
                        return
            if not self._read_symbols(data, sections, 2):
                self._read_symbols(data, sections, 11)

    def _read_symbols(self, data: mmap.mmap, sections: list[tuple[str, int, int, int, int, int]], kind: int) -> bool:
        table = next((s for s in sections if s[1] == kind), None)
        if table is None:
            return False
        _, _, offset, size, link, entsize = table
        strtab = sections[link]
        str_off, str_size = strtab[2], strtab[3]
        strings = data[str_off : str_off + str_size]
        entries = []
        for name_off, info, _other, shndx, value, sym_size in struct.iter_unpack(
            "<IBBHQQ", data[offset : offset + size - size % (entsize or 24)]
        ):
            if (info & 0xF) in (2, 10) and value and shndx:
                end = strings.find(b"\0", name_off)
                entries.append((value, sym_size, strings[name_off:end].decode("utf-8", "replace")))
        if not entries:
            return False
        entries.sort()
        self.starts = [e[0] for e in entries]
        self.sizes = [e[1] for e in entries]
        self.names = [e[2] for e in entries]
        return True

    def lookup(self, vaddr: int) -> str | None:
        i = bisect.bisect_right(self.starts, vaddr) - 1
        if i < 0:
            return None
        size = self.sizes[i]
        if size and vaddr >= self.starts[i] + size:
            return None
        return self.names[i]


def _sections(data: mmap.mmap) -> list[tuple[str, int, int, int, int, int]]:
    """(name, type, offset, size, link, entsize) of each section of a 64-bit little-endian ELF."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    raw = []
    for i in range(shnum):
        name, stype, _flags, _addr, offset, size, link, _info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize
        )
        raw.append((name, stype, offset, size, link, entsize))
    names_off, names_size = raw[shstrndx][2], raw[shstrndx][3]
    names = data[names_off : names_off + names_size]
    out = []
    for name, stype, offset, size, link, entsize in raw:
        end = names.find(b"\0", name)
        out.append((names[name:end].decode("ascii", "replace"), stype, offset, size, link, entsize))
    return out


def _build_id_debug_file(data: mmap.mmap, sections: list[tuple[str, int, int, int, int, int]]) -> str | None:
    for name, _stype, offset, size, _link, _ent in sections:
        if name != ".note.gnu.build-id" or size < 16:
            continue
        namesz, descsz, _ntype = struct.unpack_from("<III", data, offset)
        desc_off = offset + 12 + ((namesz + 3) & ~3)
        build_id = data[desc_off : desc_off + descsz].hex()
        candidate = f"/usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug"
        return candidate if os.path.exists(candidate) else None
    return None


class Symbolizer:
    """Turns addresses into symbols with the capture's module maps (the newest map first: a library
    unloaded during the run is still found in the map of its time)."""

    def __init__(self, module_maps: Sequence[ModuleMap]) -> None:
        self._ranges: list[tuple[int, int, Module]] = []
        seen: set[tuple[int, int]] = set()
        for module_map in reversed(module_maps):
            for module in module_map.modules:
                for seg in module.segments:
                    lo = module.base + seg.vaddr
                    key = (lo, seg.memsz)
                    if key in seen or not seg.memsz:
                        continue
                    seen.add(key)
                    self._ranges.append((lo, lo + seg.memsz, module))
        self._ranges.sort(key=lambda r: r[0])
        self._starts = [r[0] for r in self._ranges]
        self._elf: dict[str, _ElfSymbols] = {}
        self._cache: dict[int, NativeSymbol] = {}

    def module_of(self, address: int) -> tuple[Module, int] | None:
        i = bisect.bisect_right(self._starts, address) - 1
        for j in range(i, max(i - 8, -1), -1):  # ranges of different maps may nest; a few suffice
            lo, hi, module = self._ranges[j]
            if lo <= address < hi:
                return module, address - module.base
        return None

    def _symbols(self, path: str) -> _ElfSymbols:
        table = self._elf.get(path)
        if table is None:
            table = self._elf[path] = _ElfSymbols(path)
        return table

    def function(self, address: int) -> NativeSymbol:
        """The function containing a return address (looked up at address - 1: the call itself)."""
        found = self._cache.get(address)
        if found is not None:
            return found
        located = self.module_of(address - 1)
        if located is None:
            found = NativeSymbol(f"0x{address:x}", "", address)
        else:
            module, vaddr = located
            name = self._symbols(module.path).lookup(vaddr) if module.path.startswith("/") else None
            found = NativeSymbol(name or f"{os.path.basename(module.path)}+0x{vaddr:x}", module.path, vaddr)
        self._cache[address] = found
        return found

    def sources(self, addresses: Iterable[int]) -> dict[int, tuple[str, int]]:
        """file:line of return addresses, where debug info and addr2line exist (one run per object)."""
        tool = shutil.which("addr2line")
        if tool is None:
            return {}
        by_module: dict[str, list[tuple[int, int]]] = {}
        for address in set(addresses):
            sym = self.function(address)
            if sym.module.startswith("/") and self._symbols(sym.module).has_debug_info:
                by_module.setdefault(sym.module, []).append((address, sym.offset))
        result: dict[int, tuple[str, int]] = {}
        for path, items in by_module.items():
            query = "\n".join(f"0x{offset - 1:x}" for _, offset in items)
            try:
                out = subprocess.run(
                    [tool, "-e", path], input=query, capture_output=True, text=True, timeout=60, check=False
                ).stdout.splitlines()
            except (OSError, subprocess.TimeoutExpired):
                continue
            for (address, _), text in zip(items, out, strict=False):
                file, _, line = text.rpartition(":")
                line = line.split(" ", 1)[0]
                if file and file != "??" and line.isdigit() and line != "0":
                    result[address] = (file, int(line))
        return result


def resolve_stacks(
    capture: Capture, symbolizer: Symbolizer | None = None, *, with_lines: bool = False
) -> dict[int, tuple[StackFrame, ...]]:
    """Every stack of the capture as merged frames, innermost first; id 0 (unknown) maps to ()."""
    sym = symbolizer or Symbolizer(capture.module_maps)
    native_cache: dict[int, StackFrame] = {}
    python_cache: dict[tuple[int, int], StackFrame] = {}
    eval_addresses: set[int] = set()

    def native(address: int) -> StackFrame:
        frame = native_cache.get(address)
        if frame is None:
            s = sym.function(address)
            frame = StackFrame("native", s.name, "", 0, s.module, address)
            native_cache[address] = frame
            if s.name.startswith(EVAL_FUNCTION):
                eval_addresses.add(address)
        return frame

    def python(ref: PyFrameRef) -> StackFrame:
        key = (ref.code, ref.line)
        frame = python_cache.get(key)
        if frame is None:
            code = capture.codes.get(ref.code) or _UNKNOWN_CODE
            frame = StackFrame("python", code.name, code.filename, ref.line)
            python_cache[key] = frame
        return frame

    if with_lines:
        located = sym.sources({a for s in capture.stacks.values() for a in s.native})
        for address, (file, line) in located.items():
            base = native(address)
            native_cache[address] = StackFrame("native", base.function, file, line, base.module, address)
    out: dict[int, tuple[StackFrame, ...]] = {0: ()}
    for sid, raw in capture.stacks.items():
        out[sid] = merge_stack(raw, native, python, eval_addresses)
    return out


def merge_stack(
    raw: RawStack,
    native: Callable[[int], StackFrame],
    python: Callable[[PyFrameRef], StackFrame],
    eval_addresses: set[int],
) -> tuple[StackFrame, ...]:
    """Native frames innermost first; each eval-loop frame replaced by the group of Python frames it
    ran (a group ends at an `entry` frame); the tail-calling interpreter's opcode functions dropped.
    Python groups left over (native unwinding stopped early) go outermost."""
    groups: list[list[StackFrame]] = []
    current: list[StackFrame] = []
    for ref in raw.python:
        current.append(python(ref))
        if ref.entry:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    frames: list[StackFrame] = []
    next_group = 0
    for address in raw.native:
        frame = native(address)
        if frame.function.startswith(TAIL_CALL_PREFIX):
            continue
        if address in eval_addresses and next_group < len(groups):
            frames.extend(groups[next_group])
            next_group += 1
        else:
            frames.append(frame)
    for group in groups[next_group:]:
        frames.extend(group)
    return tuple(frames)


_UNKNOWN_CODE = CodeInfo(0, "<unknown>", "<unknown>", 0)
