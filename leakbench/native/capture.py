"""The one decoder of the native tracker's capture format (native_tracker/FORMAT.md).

Every other module works on the `Capture` this returns. A capture cut short (the target was killed) is
read up to its last complete chunk and says where it was cut; a corrupt or foreign file raises
`TrackerError` naming the file and the byte offset.
"""

from __future__ import annotations

import glob
import lzma
import os
import re
import struct
import sys
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress
from pathlib import Path

from leakbench.errors import TrackerError

# ---- constants; they must agree with native_tracker/src/format.h (a test checks) ----
FORMAT_MAGIC = b"\x7fLBTCAP\n"
COMPACT_MAGIC = b"\x7fLBTCAZ\n"  # a finished capture, its columns gathered, in two xz streams (compact_capture)
FORMAT_VERSION = 7
HEADER_SIZE = 64
CHUNK_SYNC = 0x4B43
CHUNK_HEADER_SIZE = 12

FLAG_PYTHON_STACKS = 0x1
FLAG_NATIVE_STACKS = 0x2
FLAG_FORKED_CHILD = 0x4
FLAG_PYTHON_UNREADABLE = 0x8  # the interpreter's frames could not be read: native stacks only
FLAG_FREE_THREADED = 0x10  # ... because it is a free-threaded build

REC_TIME = 0x01
REC_RSS = 0x02
REC_THREAD = 0x03
REC_SWITCH = 0x04
REC_STACK = 0x09
REC_CODE = 0x0A
REC_MODULES = 0x0B
REC_MARK = 0x0C
REC_END = 0x0D

KIND_MALLOC = 0
KIND_CALLOC = 1
KIND_REALLOC = 2
KIND_POSIX_MEMALIGN = 3
KIND_ALIGNED_ALLOC = 4
KIND_MEMALIGN = 5
KIND_VALLOC = 6
KIND_PVALLOC = 7
KIND_MMAP = 8
KIND_MMAP_INTERP = 9
KIND_COUNT = 10

KIND_NAMES = (
    "malloc",
    "calloc",
    "realloc",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "mmap",
    "mmap (interpreter)",
)

# Operations (the capture's operation column and `EventTable.op`): 0..KIND_COUNT-1 are allocations of
# that kind, then these.
OP_FREE = 16
OP_MUNMAP = 17
OP_FAILED = 18  # `address` holds the allocator kind
OP_RESTORE = 19  # a failed realloc: the block at `address` is live again

_HEADER = struct.Struct("<8sHHIII QQ IIIII I")
_CHUNK = struct.Struct("<HHII")
_COUNTS = struct.Struct("<II")  # a chunk payload starts with: side stream bytes, events
_UNSIGNED = {1: "B", 2: "H", 4: "I", 8: "Q"}
_VALID_OPS = bytes(range(KIND_COUNT)) + bytes((OP_FREE, OP_MUNMAP, OP_FAILED, OP_RESTORE))
_BIG_ENDIAN = sys.byteorder == "big"


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    pid: int
    ppid: int
    flags: int
    start_realtime_ns: int
    start_monotonic_ns: int
    python_version: int  # Py_Version of the target's interpreter, 0 if none
    tick_ms: int
    native_depth: int
    page_size: int
    buffer_size: int

    @property
    def python_stacks(self) -> bool:
        return bool(self.flags & FLAG_PYTHON_STACKS)

    @property
    def forked_child(self) -> bool:
        return bool(self.flags & FLAG_FORKED_CHILD)

    @property
    def python_frames_unavailable(self) -> str:
        """Why the interpreter's frames are missing from this capture's stacks ("" when they are not):
        the message the native stage and the report show."""
        if not self.flags & FLAG_PYTHON_UNREADABLE:
            return ""
        version = f"{self.python_version >> 24}.{(self.python_version >> 16) & 0xFF}"
        build = f"free-threaded CPython {version}t" if self.flags & FLAG_FREE_THREADED else f"CPython {version}"
        return f"Python frames unavailable on {build}: native stacks only"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """A Python code object, sent once (its frames carry their own line numbers)."""

    id: int
    filename: str
    name: str  # the qualified name
    firstlineno: int


@dataclass(frozen=True, slots=True)
class PyFrameRef:
    code: int
    line: int  # the line that was running, as the tracker read it from the code's location table
    entry: bool  # the first frame run by one C-level call of the eval loop


@dataclass(frozen=True, slots=True)
class RawStack:
    """A stack as recorded: native return addresses and Python frames, both innermost first."""

    id: int
    native: tuple[int, ...]
    python: tuple[PyFrameRef, ...]


@dataclass(frozen=True, slots=True)
class Segment:
    vaddr: int
    memsz: int
    flags: int


@dataclass(frozen=True, slots=True)
class Module:
    path: str
    base: int  # load bias: an address minus base is the address in the file's own terms
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class ModuleMap:
    time_ms: int
    modules: tuple[Module, ...]


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    index: int
    tid: int
    name: str


@dataclass(frozen=True, slots=True)
class Mark:
    time_ms: int
    label: str
    event_index: int  # the number of events recorded before the mark


@dataclass(frozen=True, slots=True)
class EndInfo:
    allocations: int  # allocation records the tracker wrote (all kinds)
    releases: int  # free and munmap records


@dataclass(frozen=True, slots=True)
class EventTable:
    """All allocation events, in capture order, as parallel columns (compact: millions fit)."""

    op: array[int]
    time_ms: array[int]
    thread: array[int]
    address: array[int]
    size: array[int]
    stack: array[int]

    def __len__(self) -> int:
        return len(self.op)

    def rows(self) -> Iterator[tuple[int, int, int, int, int, int]]:
        return zip(self.op, self.time_ms, self.thread, self.address, self.size, self.stack, strict=True)


@dataclass(frozen=True, slots=True)
class Capture:
    path: str
    size_bytes: int
    header: Header
    events: EventTable
    stacks: dict[int, RawStack]
    codes: dict[int, CodeInfo]
    threads: dict[int, ThreadInfo]
    module_maps: tuple[ModuleMap, ...]
    rss: tuple[tuple[int, int], ...]  # (ms since start, resident bytes)
    marks: tuple[Mark, ...]
    end: EndInfo | None
    cut_at: int | None  # byte offset where a capture without an END record stops being usable
    duration_ms: int

    @property
    def complete(self) -> bool:
        return self.end is not None and self.cut_at is None

    @property
    def pid(self) -> int:
        return self.header.pid

    def describe_cut(self) -> str:
        """One sentence for the report on how the capture ended."""
        if self.complete:
            return "complete"
        where = f"byte {self.cut_at}" if self.cut_at is not None else "its last record"
        return (
            f"cut at {where} of {self.size_bytes} (after {self.duration_ms} ms): the process ended without "
            "closing it (killed?); everything before that point is used"
        )


@dataclass(slots=True)
class _Cursor:
    """Where decoding is, for error messages."""

    path: str
    chunk_start: int = 0


def read_capture(path: str | os.PathLike[str]) -> Capture:
    """Decode one capture file; raises TrackerError for a foreign, empty or corrupt file."""
    name = os.fspath(path)
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        raise TrackerError(f"cannot read capture {name}: {exc.strerror}", code="io") from exc
    return decode_capture(data, name)


def decode_capture(data: bytes, name: str = "<capture>") -> Capture:
    if data.startswith(COMPACT_MAGIC):
        data = _expand(data, name)
    header = _decode_header(data, name)
    decoder = _Decoder(name, header)
    pos = HEADER_SIZE
    cut_at: int | None = None
    total = len(data)
    view = memoryview(data)
    while pos < total:
        if total - pos < CHUNK_HEADER_SIZE:
            cut_at = pos
            break
        sync, _flags, length, crc = _CHUNK.unpack_from(data, pos)
        if sync != CHUNK_SYNC:
            raise TrackerError(
                f"corrupt capture {name}: no chunk starts at byte {pos} (found {data[pos : pos + 2].hex()})",
                code="corrupt",
                offset=pos,
            )
        if length > header.buffer_size:
            raise TrackerError(
                f"corrupt capture {name}: chunk at byte {pos} claims {length} bytes, more than the "
                f"writer's buffer ({header.buffer_size})",
                code="corrupt",
                offset=pos,
            )
        body_start = pos + CHUNK_HEADER_SIZE
        if body_start + length > total:
            cut_at = pos  # the process died while writing this chunk
            break
        if zlib.crc32(view[body_start : body_start + length]) != crc:
            raise TrackerError(
                f"corrupt capture {name}: checksum mismatch in the chunk at byte {pos}",
                code="corrupt",
                offset=pos,
            )
        decoder.chunk(data, body_start, body_start + length)
        pos = body_start + length
    if decoder.end is not None and pos < total:
        cut_at = None
    if decoder.end is None and cut_at is None:
        cut_at = pos
    return Capture(
        path=name,
        size_bytes=total,
        header=header,
        events=EventTable(
            decoder.column("B", decoder.op_parts),
            decoder.time_col,
            decoder.thread_col,
            decoder.column("Q", decoder.addr_parts),
            decoder.column("Q", decoder.size_parts),
            decoder.column("I", decoder.stack_parts),
        ),
        stacks=decoder.stacks,
        codes=decoder.codes,
        threads=decoder.threads,
        module_maps=tuple(decoder.module_maps),
        rss=tuple(decoder.rss),
        marks=tuple(decoder.marks),
        end=decoder.end,
        cut_at=cut_at,
        duration_ms=decoder.time,
    )


def compact_capture(path: str | os.PathLike[str]) -> int:
    """Compress a finished capture in place (after the target exited; never while it runs, as the raw
    stream is what survives a crash). Returns the new size. Reading it back is transparent."""
    name = os.fspath(path)
    data = Path(name).read_bytes()
    if data.startswith(COMPACT_MAGIC):
        return len(data)
    _decode_header(data, name)  # refuse to wrap a foreign file
    rest, addresses = _gather(data)
    packed = b"".join(
        (
            COMPACT_MAGIC,
            lzma.compress(rest, format=lzma.FORMAT_XZ, filters=_XZ_THOROUGH),
            lzma.compress(addresses, format=lzma.FORMAT_XZ, filters=_XZ_FAST),
        )
    )
    tmp = Path(name + ".tmp")
    tmp.write_bytes(packed)
    os.replace(tmp, name)
    return len(packed)


def _expand(data: bytes, name: str) -> bytes:
    streams: list[bytes] = []
    pos = len(COMPACT_MAGIC)
    while pos < len(data) and len(streams) < 2:
        decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        try:
            streams.append(decompressor.decompress(memoryview(data)[pos:]))
        except lzma.LZMAError as exc:
            raise TrackerError(
                f"corrupt capture {name}: its compressed stream at byte {pos} is damaged ({exc})",
                code="corrupt",
                offset=pos,
            ) from None
        if not decompressor.eof:
            raise TrackerError(
                f"capture {name} is cut inside its compressed stream (at byte {len(data)})",
                code="truncated",
                offset=len(data),
            )
        pos = len(data) - len(decompressor.unused_data)
        if streams[0][8:10] != _VERSION_BYTES:
            return streams[0]  # another version: refused by name when its header is read
    try:
        if len(streams) != 2:
            raise IndexError("no address stream")
        return _scatter(*streams)
    except (IndexError, struct.error):
        raise TrackerError(
            f"corrupt capture {name}: its compressed streams do not hold whole chunks", code="corrupt", offset=0
        ) from None


# A compacted capture gathers like with like: the header, the number m of whole chunks, the m chunk heads
# (chunk header, counts, side stream), the m operation columns, the m size columns and the m stack
# columns, then whatever followed the last whole chunk; and apart, the m address columns. xz finds far
# more repetition in a column next to the same column of the next chunk than next to other columns, and
# its thorough match finder pays off everywhere but on addresses, which get the fast one.
_VERSION_BYTES = struct.pack("<H", FORMAT_VERSION)
_XZ_THOROUGH = [{"id": lzma.FILTER_LZMA2, "preset": 1, "mode": lzma.MODE_NORMAL}]
_XZ_FAST = [{"id": lzma.FILTER_LZMA2, "preset": 1}]
_COUNT = struct.Struct("<I")


def _gather(data: bytes) -> tuple[bytes, bytes]:
    """(everything but the addresses, the address columns), gathered as above."""
    heads: list[bytes] = []
    columns: list[list[bytes]] = [[], [], [], []]  # operations, addresses, sizes, stacks
    pos = HEADER_SIZE
    while pos + CHUNK_HEADER_SIZE + _COUNTS.size <= len(data):
        sync, _flags, length, _crc = _CHUNK.unpack_from(data, pos)
        body = pos + CHUNK_HEADER_SIZE
        if sync != CHUNK_SYNC or length < _COUNTS.size or body + length > len(data):
            break
        side, count = _COUNTS.unpack_from(data, body)
        at = body + _COUNTS.size + side
        parts = [data[at : at + count]]
        at += count
        for _ in range(3 if count else 0):
            width = data[at] if at < body + length else 0
            parts.append(data[at : at + 1 + width * count])
            at += 1 + width * count
        if at != body + length or not all(part[:1] and part[0] in _UNSIGNED for part in parts[1:]):
            break  # not a whole chunk: kept as it is, after the gathered ones
        heads.append(data[pos : body + _COUNTS.size + side])
        for column, part in zip(columns, parts, strict=False):  # a chunk without events has no columns
            column.append(part)
        pos = at
    ops, addresses, sizes, stacks = columns
    rest = [data[:HEADER_SIZE], _COUNT.pack(len(heads)), *heads, *ops, *sizes, *stacks, data[pos:]]
    return b"".join(rest), b"".join(addresses)


def _scatter(rest: bytes, addresses: bytes) -> bytes:
    """The raw capture back from its gathered form, byte for byte."""
    (m,) = _COUNT.unpack_from(rest, HEADER_SIZE)
    pos = HEADER_SIZE + _COUNT.size
    chunks: list[list[bytes]] = []
    counts = []
    for _ in range(m):
        side, count = _COUNTS.unpack_from(rest, pos + CHUNK_HEADER_SIZE)
        end = pos + CHUNK_HEADER_SIZE + _COUNTS.size + side
        chunks.append([rest[pos:end]])
        counts.append(count)
        pos = end
    for parts, count in zip(chunks, counts, strict=True):
        parts.append(rest[pos : pos + count])
        pos += count
    at = 0
    for parts, count in zip(chunks, counts, strict=True):
        if count:
            end = at + 1 + addresses[at] * count
            parts.append(addresses[at:end])
            at = end
    for _ in range(2):  # sizes, then stacks
        for parts, count in zip(chunks, counts, strict=True):
            if count:
                end = pos + 1 + rest[pos] * count
                parts.append(rest[pos:end])
                pos = end
    if pos > len(rest) or at != len(addresses):
        raise IndexError("columns past the end")
    return b"".join([rest[:HEADER_SIZE], *(b"".join(parts) for parts in chunks), rest[pos:]])


def find_captures(template: str | os.PathLike[str]) -> list[Path]:
    """The capture files a template (with `%p` for the pid) produced: the target's and its children's."""
    path = Path(os.fspath(template))
    if "%p" not in path.name:
        own = [path] if path.is_file() else []
        children = re.compile(re.escape(path.name) + r"\.\d+")
        return own + sorted(p for p in path.parent.glob(glob.escape(path.name) + ".*") if children.fullmatch(p.name))
    pattern = re.compile(re.escape(path.name).replace("%p", r"\d+"))
    found = path.parent.glob(glob.escape(path.name).replace("%p", "*"))
    return sorted(p for p in found if pattern.fullmatch(p.name) and p.is_file())


def _decode_header(data: bytes, name: str) -> Header:
    if not data:
        raise TrackerError(
            f"capture {name} is empty: the tracker never wrote to it (was the target started with the "
            "tracker preloaded?)",
            code="empty",
            offset=0,
        )
    if data[:8] != FORMAT_MAGIC[: len(data[:8])] or len(data) < 8:
        raise TrackerError(
            f"{name} is not a leakbench capture: wrong magic bytes at offset 0", code="foreign", offset=0
        )
    if len(data) < HEADER_SIZE:
        raise TrackerError(
            f"capture {name} ends inside its {HEADER_SIZE}-byte header (at byte {len(data)})",
            code="truncated",
            offset=len(data),
        )
    fields = _HEADER.unpack_from(data, 0)
    version, header_size = fields[1], fields[2]
    if version != FORMAT_VERSION:
        raise TrackerError(
            f"capture {name} has format version {version}; this leakbench reads version {FORMAT_VERSION}",
            code="version",
            offset=8,
        )
    if header_size != HEADER_SIZE or zlib.crc32(data[:60]) != fields[-1]:
        raise TrackerError(f"corrupt capture {name}: bad header checksum", code="corrupt", offset=60)
    return Header(
        version=version,
        pid=fields[3],
        ppid=fields[4],
        flags=fields[5],
        start_realtime_ns=fields[6],
        start_monotonic_ns=fields[7],
        python_version=fields[8],
        tick_ms=fields[9],
        native_depth=fields[10],
        page_size=fields[11],
        buffer_size=fields[12],
    )


_EMPTY_STACK = RawStack(0, (), ())


class _Decoder:
    """Decodes chunks in file order into columns and tables."""

    def __init__(self, name: str, header: Header) -> None:
        self.name = name
        self.header = header
        # each column's chunks, little-endian at the column's width, joined once at the end (growing an
        # array chunk by chunk would copy it again and again)
        self.op_parts: list[bytes] = []
        self.addr_parts: list[bytes | bytearray] = []
        self.size_parts: list[bytes | bytearray] = []
        self.stack_parts: list[bytes | bytearray] = []
        self.events = 0
        self.time_col = array("I")
        self.thread_col = array("I")
        self.stacks: dict[int, RawStack] = {}
        self.codes: dict[int, CodeInfo] = {}
        self.threads: dict[int, ThreadInfo] = {}
        self.module_maps: list[ModuleMap] = []
        self.rss: list[tuple[int, int]] = []
        self.marks: list[Mark] = []
        self.end: EndInfo | None = None
        self.time = 0

    def fail(self, offset: int, problem: str) -> TrackerError:
        return TrackerError(f"corrupt capture {self.name}: {problem} at byte {offset}", code="corrupt", offset=offset)

    def chunk(self, data: bytes, pos: int, stop: int) -> None:
        """One chunk: the side stream (times, threads, stacks, code, marks...), then the event columns."""
        try:
            side_len, count = _COUNTS.unpack_from(data, pos)
            pos += _COUNTS.size
            side_end = pos + side_len
            if side_end > stop:
                raise self.fail(pos, "a side stream longer than its chunk")
            self._side(data, pos, side_end, count)
            pos = side_end
            if count:
                pos = self._columns(data, pos, stop, count)
            if pos != stop:
                raise self.fail(stop, "a record runs past the end of its chunk")
        except (IndexError, struct.error):
            raise self.fail(stop, "a record runs past the end of its chunk") from None
        except OverflowError:
            raise self.fail(pos, "a value out of range") from None

    def _side(self, data: bytes, pos: int, stop: int, count: int) -> None:
        """Side records, each at an event position: TIME and SWITCH set the time and thread of the events
        that follow them (filled in as runs of one value), MARK notes where it falls."""
        base = self.events
        now = self.time
        thread = 0  # a chunk starts with no current thread: the tracker writes a SWITCH first
        filled_time = filled_thread = last_at = 0
        time_col, thread_col = self.time_col, self.thread_col
        while pos < stop:
            start = pos
            step, pos = _uvarint(data, pos)
            at = last_at + step
            if at > count:
                raise self.fail(start, f"a record placed at event {at} of a chunk of {count}")
            last_at = at
            tag = data[pos]
            pos += 1
            if tag == REC_TIME:
                if at > filled_time:
                    time_col.extend(array("I", (now,)) * (at - filled_time))
                    filled_time = at
                step, pos = _uvarint(data, pos)
                now += step
            elif tag == REC_SWITCH:
                if at > filled_thread:
                    thread_col.extend(array("I", (thread,)) * (at - filled_thread))
                    filled_thread = at
                thread, pos = _uvarint(data, pos)
                if thread not in self.threads:
                    raise self.fail(start, f"switch to unknown thread {thread}")
            elif tag == REC_STACK:
                pos = self._stack(data, pos, start)
            elif tag == REC_CODE:
                pos = self._code(data, pos)
            elif tag == REC_RSS:
                rss, pos = _uvarint(data, pos)
                self.rss.append((now, rss))
            elif tag == REC_THREAD:
                index, pos = _uvarint(data, pos)
                tid, pos = _uvarint(data, pos)
                raw, pos = _bytes(data, pos)
                self.threads[index] = ThreadInfo(index, tid, raw.decode("utf-8", "replace"))
            elif tag == REC_MODULES:
                pos = self._modules(data, pos, now)
            elif tag == REC_MARK:
                raw, pos = _bytes(data, pos)
                self.marks.append(Mark(now, raw.decode("utf-8", "replace"), base + at))
            elif tag == REC_END:
                allocs, pos = _uvarint(data, pos)
                frees, pos = _uvarint(data, pos)
                self.end = EndInfo(allocs, frees)
            else:
                raise self.fail(start, f"unknown record type 0x{tag:02x}")
        if pos != stop:
            raise self.fail(stop, "a side record runs past the end of its stream")
        if count > filled_time:
            time_col.extend(array("I", (now,)) * (count - filled_time))
        if count > filled_thread:
            thread_col.extend(array("I", (thread,)) * (count - filled_thread))
        self.time = now

    def _columns(self, data: bytes, pos: int, stop: int, count: int) -> int:
        """The event columns, decoded in bulk (byte planes, no per-event work): operations, addresses,
        sizes, stack ids."""
        ops = data[pos : pos + count]
        if len(ops) != count:
            raise IndexError("operations past the end")
        if ops.translate(None, _VALID_OPS):
            bad = next(b for b in ops if b not in _VALID_OPS)
            raise self.fail(pos + ops.index(bad), f"unknown event operation {bad}")
        pos += count
        addrs, pos = self._column(data, pos, stop, count)
        sizes, pos = self._column(data, pos, stop, count)
        sids, pos = self._column(data, pos, stop, count)
        width = len(sids) // count
        if _any_above(sids, width, len(self.stacks)):
            top = max(array(_UNSIGNED[width], sids))
            raise self.fail(pos, f"reference to stack {top} before its definition")
        self.op_parts.append(ops)
        self.addr_parts.append(_widen(addrs, len(addrs) // count, 8))
        self.size_parts.append(_widen(sizes, len(sizes) // count, 8))
        self.stack_parts.append(_without_release_stacks(_widen(sids, width, 4), ops))
        self.events += count
        return pos

    @staticmethod
    def column(typecode: str, parts: list[bytes] | list[bytes | bytearray]) -> array[int]:
        column = array(typecode)
        column.frombytes(b"".join(parts))
        if _BIG_ENDIAN:
            column.byteswap()
        return column

    def _column(self, data: bytes, pos: int, stop: int, count: int) -> tuple[bytes, int]:
        width = data[pos]
        if width not in _UNSIGNED:
            raise self.fail(pos, f"a column of width {width}")
        pos += 1
        end = pos + count * width
        if end > stop:
            raise IndexError("column past the end")
        return data[pos:end], end

    def _stack(self, data: bytes, pos: int, start: int) -> int:
        sid = len(self.stacks) + 1  # stacks are numbered in the order they are written
        back, pos = _uvarint(data, pos)
        shared, pos = _uvarint(data, pos)
        count, pos = _uvarint(data, pos)
        base = self._parent(sid, back, shared, start).native
        if count > 1024 or shared > len(base):
            raise self.fail(start, "an implausible stack")
        native = list(struct.unpack_from(f"<{count}Q", data, pos))  # whole return addresses
        pos += 8 * count
        if shared:
            native.extend(base[len(base) - shared :])
        back, pos = _uvarint(data, pos)
        shared, pos = _uvarint(data, pos)
        count, pos = _uvarint(data, pos)
        pbase = self._parent(sid, back, shared, start).python
        if count > 1024 or shared > len(pbase):
            raise self.fail(start, "an implausible stack")
        python = []
        codes = self.codes
        for _ in range(count):
            code, pos = _uvarint(data, pos)
            word, pos = _uvarint(data, pos)
            if code and code not in codes:
                raise self.fail(start, f"reference to code object {code} before its definition")
            python.append(PyFrameRef(code, word >> 1, bool(word & 1)))
        if shared:
            python.extend(pbase[len(pbase) - shared :])
        self.stacks[sid] = RawStack(sid, tuple(native), tuple(python))
        return pos

    def _parent(self, sid: int, back: int, shared: int, start: int) -> RawStack:
        if not back or not shared:
            if back or shared:
                raise self.fail(
                    start, f"stack {sid} names a parent without sharing its frames, or shares frames without a parent"
                )
            return _EMPTY_STACK
        parent = self.stacks.get(sid - back)
        if parent is None:
            raise self.fail(start, f"stack {sid} builds on unknown stack {sid - back}")
        return parent

    def _code(self, data: bytes, pos: int) -> int:
        cid = len(self.codes) + 1  # code objects are numbered in the order they are written
        firstlineno, pos = _uvarint(data, pos)
        filename, pos = _bytes(data, pos)
        qualname, pos = _bytes(data, pos)
        self.codes[cid] = CodeInfo(
            cid, filename.decode("utf-8", "replace"), qualname.decode("utf-8", "replace"), firstlineno
        )
        return pos

    def _modules(self, data: bytes, pos: int, now: int) -> int:
        count, pos = _uvarint(data, pos)
        modules = []
        for _ in range(count):
            path, pos = _bytes(data, pos)
            base, pos = _uvarint(data, pos)
            nseg, pos = _uvarint(data, pos)
            segments = []
            for _ in range(nseg):
                vaddr, pos = _uvarint(data, pos)
                memsz, pos = _uvarint(data, pos)
                flags, pos = _uvarint(data, pos)
                segments.append(Segment(vaddr, memsz, flags))
            modules.append(Module(path.decode("utf-8", "surrogateescape"), base, tuple(segments)))
        self.module_maps.append(ModuleMap(now, tuple(modules)))
        return pos


def _widen(raw: bytes, width: int, wide: int) -> bytes | bytearray:
    """Little-endian unsigned values of `width` bytes as values of `wide` bytes: each byte plane is copied
    into place by one slice assignment."""
    if width == wide:
        return raw
    out = bytearray(len(raw) // width * wide)
    for k in range(width):
        out[k::wide] = raw[k::width]
    return out


# ops -> 0x00 for a release (its stack entry only repeats the one before it), 0xFF for the others
_KEEP_STACK = bytes(0 if op in (OP_FREE, OP_MUNMAP, OP_RESTORE) else 0xFF for op in range(256))


def _without_release_stacks(stacks: bytes | bytearray, ops: bytes) -> bytes:
    """4-byte stack ids with the releases' entries set to 0: one mask, ANDed as a big integer."""
    keep = ops.translate(_KEEP_STACK)
    mask = bytearray(4 * len(ops))
    for k in range(4):
        mask[k::4] = keep
    kept = int.from_bytes(stacks, "little") & int.from_bytes(mask, "little")
    return kept.to_bytes(len(stacks), "little")


@lru_cache(maxsize=512)
def _byte_mask(limit: int, above: bool) -> bytes:
    """A translation table: 0xFF for the bytes above `limit` (or equal to it), 0 for the others."""
    return bytes(0xFF if (b > limit if above else b == limit) else 0 for b in range(256))


def _any_above(raw: bytes, width: int, limit: int) -> bool:
    """Whether any little-endian unsigned value of `width` bytes in `raw` exceeds `limit`: compared byte
    plane by byte plane from the top, as bit masks, without a per-value loop."""
    if limit >= (1 << (8 * width)) - 1:
        return False
    tied = -1  # the values whose higher bytes all equal the limit's so far
    for k in range(width - 1, -1, -1):
        plane = raw[k::width]
        byte = (limit >> (8 * k)) & 0xFF
        if tied & int.from_bytes(plane.translate(_byte_mask(byte, True)), "little"):
            return True
        tied &= int.from_bytes(plane.translate(_byte_mask(byte, False)), "little")
        if not tied:
            return False
    return False


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    return _uvarint_rest(data, pos + 1, b)


def _uvarint_rest(data: bytes, pos: int, first: int) -> tuple[int, int]:
    value = first & 0x7F
    shift = 7
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise OverflowError("varint too long")


def _bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _uvarint(data, pos)
    end = pos + n
    if end > len(data):
        raise IndexError("string past the end")
    return data[pos:end], end


@dataclass(frozen=True, slots=True)
class CaptureSummary:
    """Totals a report states (and a test checks) without any analysis."""

    allocations: int
    releases: int
    failed: int
    bytes_allocated: int

    @classmethod
    def of(cls, capture: Capture) -> CaptureSummary:
        ops = capture.events.op
        allocations = sum(ops.count(k) for k in range(KIND_COUNT))
        total = sum(compress(capture.events.size, map(KIND_COUNT.__gt__, ops)))
        return cls(allocations, ops.count(OP_FREE) + ops.count(OP_MUNMAP), ops.count(OP_FAILED), total)


__all__ = [
    "FORMAT_VERSION",
    "Capture",
    "CaptureSummary",
    "CodeInfo",
    "EventTable",
    "Header",
    "Mark",
    "Module",
    "ModuleMap",
    "PyFrameRef",
    "RawStack",
    "ThreadInfo",
    "compact_capture",
    "decode_capture",
    "find_captures",
    "read_capture",
]
