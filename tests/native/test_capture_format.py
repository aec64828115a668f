"""The capture format: C and Python agree on its constants; a truncated capture is read up to where it
was cut; a corrupt or foreign file is refused with the file and the byte offset."""

from __future__ import annotations

import itertools
import lzma
import re
import struct
import zlib
from pathlib import Path

import pytest

from leakbench.errors import TrackerError
from leakbench.native import capture as fmt
from leakbench.native.capture import CHUNK_HEADER_SIZE, HEADER_SIZE, decode_capture, read_capture
from tests.native.conftest import run_tracked

FORMAT_H = Path(__file__).resolve().parents[2] / "native_tracker" / "src" / "format.h"


def c_constants() -> dict[str, str]:
    return dict(re.findall(r"#define LBT_(\w+) (\S+)", FORMAT_H.read_text()))


def test_c_and_python_agree_on_every_format_constant() -> None:
    c = c_constants()
    assert int(c["FORMAT_VERSION"]) == fmt.FORMAT_VERSION
    assert c["FORMAT_MAGIC"].strip('"').encode().decode("unicode_escape").encode("latin-1") == fmt.FORMAT_MAGIC
    for name, value in c.items():
        if name in ("FORMAT_MAGIC", "FORMAT_H"):
            continue
        assert getattr(fmt, name) == int(value.rstrip("u"), 0), name


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("format")
    program = """
    import time
    blocks = []
    for i in range(40):
        blocks.append(bytearray(200_000 + i))
        time.sleep(0.004)
    """
    tracked = run_tracked(tmp, program, tick_ms=5)
    capture = tracked.capture()
    assert capture.complete
    return Path(capture.path).read_bytes()


def chunk_offsets(data: bytes) -> list[int]:
    offsets, pos = [], HEADER_SIZE
    while pos < len(data):
        offsets.append(pos)
        pos += CHUNK_HEADER_SIZE + struct.unpack_from("<I", data, pos + 4)[0]
    return offsets


def test_a_capture_cut_inside_a_chunk_is_read_up_to_that_chunk(good: bytes) -> None:
    offsets = chunk_offsets(good)
    assert len(offsets) >= 5, "the tick should have cut the run into several chunks"
    full = decode_capture(good)
    cut_chunk = offsets[len(offsets) // 2]
    for cut in (cut_chunk + 3, cut_chunk + CHUNK_HEADER_SIZE + 7, offsets[len(offsets) // 2 + 1] - 1):
        part = decode_capture(good[:cut], "cut.lbt")
        assert part.cut_at == cut_chunk and not part.complete
        assert 0 < len(part.events) < len(full.events)
        assert list(part.events.address) == list(full.events.address)[: len(part.events)]
        assert "cut at byte" in part.describe_cut()


def test_a_capture_cut_between_chunks_has_no_end_and_says_so(good: bytes) -> None:
    offsets = chunk_offsets(good)
    part = decode_capture(good[: offsets[-1]], "cut.lbt")
    assert part.end is None and part.cut_at == offsets[-1]


def test_a_flipped_byte_is_refused_with_file_and_offset(good: bytes, tmp_path: Path) -> None:
    offsets = chunk_offsets(good)
    victim = offsets[2] + CHUNK_HEADER_SIZE + 5
    bad = bytearray(good)
    bad[victim] ^= 0x40
    path = tmp_path / "bad.lbt"
    path.write_bytes(bytes(bad))
    with pytest.raises(TrackerError) as err:
        read_capture(path)
    assert err.value.code == "corrupt" and err.value.offset == offsets[2]
    assert str(path) in str(err.value) and str(offsets[2]) in str(err.value)


def test_a_broken_chunk_header_is_refused(good: bytes) -> None:
    offsets = chunk_offsets(good)
    bad = bytearray(good)
    bad[offsets[1]] ^= 0xFF
    with pytest.raises(TrackerError, match=f"byte {offsets[1]}") as err:
        decode_capture(bytes(bad), "x.lbt")
    assert err.value.offset == offsets[1]


def test_a_record_that_does_not_parse_is_refused_even_with_a_valid_checksum(good: bytes) -> None:
    offsets = chunk_offsets(good)
    side = bytes([0, 0x1F, 0])  # at event 0, no such record type
    body = struct.pack("<II", len(side), 0) + side
    chunk = struct.pack("<HHII", fmt.CHUNK_SYNC, 0, len(body), zlib.crc32(body)) + body
    data = good[: offsets[1]] + chunk + good[offsets[1] :]
    with pytest.raises(TrackerError, match="unknown record type 0x1f") as err:
        decode_capture(data, "x.lbt")
    assert err.value.offset == offsets[1] + CHUNK_HEADER_SIZE + 8


def chunk_of(side: bytes, ops: bytes, *columns: tuple[int, bytes]) -> bytes:
    body = struct.pack("<II", len(side), len(ops)) + side + ops
    body += b"".join(bytes([width]) + values for width, values in columns)
    return struct.pack("<HHII", fmt.CHUNK_SYNC, 0, len(body), zlib.crc32(body)) + body


def test_event_columns_decode_in_bulk_with_their_own_widths(good: bytes) -> None:
    """Given a chunk of three events with 2-byte addresses, 1-byte sizes and 4-byte stacks, when it is
    decoded, then each column holds its values whole, a FAILED event's address is its allocator kind, and
    a free has no stack (the entry the tracker repeats there reads as 0)."""
    before = decode_capture(good)
    switch = bytes([0, fmt.REC_SWITCH, 1])
    ops = bytes([fmt.KIND_MALLOC, fmt.OP_FAILED, fmt.OP_FREE])
    stack = len(before.stacks)
    chunk = chunk_of(
        switch,
        ops,
        (2, struct.pack("<HHH", 4096, fmt.KIND_CALLOC, 4096)),
        (1, bytes([24, 99, 0])),
        (4, struct.pack("<III", stack, stack, stack)),
    )
    capture = decode_capture(good + chunk)  # after the last chunk: thread 1 and every stack are known by then
    rows = list(capture.events.rows())[-3:]
    assert [(op, addr, size, s) for op, _t, _th, addr, size, s in rows] == [
        (fmt.KIND_MALLOC, 4096, 24, stack),
        (fmt.OP_FAILED, fmt.KIND_CALLOC, 99, stack),
        (fmt.OP_FREE, 4096, 0, 0),
    ]
    assert len(capture.events) == len(before.events) + 3


@pytest.mark.parametrize(
    ("ops", "columns", "problem"),
    [
        (bytes([0x33]), ((1, b"\0"), (1, b"\0"), (1, b"\0")), "unknown event operation 51"),
        (bytes([0]), ((3, b"\0\0\0"), (1, b"\0"), (1, b"\0")), "a column of width 3"),
        (bytes([0]), ((1, b"\0"), (1, b"\0"), (4, struct.pack("<I", 10**9))), "reference to stack 1000000000"),
        (bytes([0, 0]), ((1, b"\0\0"), (1, b"\0\0"), (1, b"\0")), "runs past the end"),
    ],
)
def test_bad_event_columns_are_refused(
    good: bytes, ops: bytes, columns: tuple[tuple[int, bytes], ...], problem: str
) -> None:
    data = good + chunk_of(bytes([0, fmt.REC_SWITCH, 1]), ops, *columns)
    with pytest.raises(TrackerError, match=problem) as err:
        decode_capture(data, "x.lbt")
    assert err.value.code == "corrupt"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "foreign"),
        (b"hello, this is text\n" * 10, "foreign"),
        (fmt.FORMAT_MAGIC + b"\x01\x00", "truncated"),
    ],
)
def test_foreign_empty_and_headless_files_are_refused(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "capture.lbt"
    path.write_bytes(content)
    with pytest.raises(TrackerError) as err:
        read_capture(path)
    assert err.value.code == code and str(path) in str(err.value)


def test_another_format_version_is_refused_by_name(good: bytes) -> None:
    bad = bytearray(good)
    struct.pack_into("<H", bad, 8, fmt.FORMAT_VERSION + 1)
    struct.pack_into("<I", bad, 60, zlib.crc32(bytes(bad[:60])))
    with pytest.raises(TrackerError, match=f"format version {fmt.FORMAT_VERSION + 1}") as err:
        decode_capture(bytes(bad), "next.lbt")
    assert err.value.code == "version"


def test_rss_ticks_and_timestamps(good: bytes) -> None:
    capture = decode_capture(good)
    times = [t for t, _ in capture.rss]
    assert len(times) >= 10
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) <= 50, f"RSS ticks should come every 5 ms here, got gaps {gaps}"
    assert all(rss > 1_000_000 for _, rss in capture.rss)
    assert list(capture.events.time_ms) == sorted(capture.events.time_ms)
    assert capture.duration_ms >= 150


def uvarint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def stack_record(native: tuple[int, int, list[int]], python: tuple[int, int, list[tuple[int, int]]]) -> bytes:
    """A STACK record at the same event position as the previous record: for each part the parent
    (distance back), the shared outer frames and the new frames, innermost first."""
    back, shared, addresses = native
    out = bytes([0, fmt.REC_STACK]) + uvarint(back) + uvarint(shared) + uvarint(len(addresses))
    out += struct.pack(f"<{len(addresses)}Q", *addresses)
    back, shared, frames = python
    out += uvarint(back) + uvarint(shared) + uvarint(len(frames))
    return out + b"".join(uvarint(code) + uvarint(word) for code, word in frames)


def test_a_stack_builds_on_any_earlier_stack_not_just_the_last(good: bytes) -> None:
    """Given three new stacks where the third shares the outer frames of the first (two back), when the
    chunk is decoded, then the third has its own innermost frame followed by the first one's outer frames,
    and its Python frames are the second one's with the line each frame carries."""
    before = decode_capture(good)
    first = len(before.stacks) + 1
    code = next(iter(before.codes))
    side = stack_record((0, 0, [0x1020, 0x1010, 0x1000]), (0, 0, []))
    side += stack_record((0, 0, [0x9000]), (0, 0, [(code, 41 << 1 | 1), (code, 7 << 1)]))
    side += stack_record((2, 2, [0x1015]), (1, 2, []))  # below 0x1010, 0x1000 of the first
    capture = decode_capture(good + chunk_of(side, b""))
    assert capture.stacks[first].native == (0x1020, 0x1010, 0x1000)
    third = capture.stacks[first + 2]
    assert third.native == (0x1015, 0x1010, 0x1000)
    assert [(f.code, f.line, f.entry) for f in third.python] == [(code, 41, True), (code, 7, False)]


@pytest.mark.parametrize(
    "record",
    [
        stack_record((1, 0, []), (0, 0, [])),  # a parent of nothing shared
        stack_record((0, 1, []), (0, 0, [])),  # shared frames without a parent
        stack_record((10**6, 1, []), (0, 0, [])),  # a parent never defined
    ],
)
def test_a_stack_with_a_bad_parent_is_refused(good: bytes, record: bytes) -> None:
    with pytest.raises(TrackerError) as err:
        decode_capture(good + chunk_of(record, b""), "x.lbt")
    assert err.value.code == "corrupt"


def test_side_records_are_placed_by_steps_and_times_move_by_steps(good: bytes) -> None:
    """Given a chunk of four events with a TIME after the first (step 1, +5 ms) and another after the
    third (step 2, +2 ms), when it is decoded, then the events carry those times."""
    before = decode_capture(good)
    side = bytes([0, fmt.REC_SWITCH, 1, 1, fmt.REC_TIME, 5, 2, fmt.REC_TIME, 2])
    ops = bytes([fmt.KIND_MALLOC] * 4)
    chunk = chunk_of(side, ops, (1, bytes([16] * 4)), (1, bytes([8] * 4)), (1, bytes(4)))
    capture = decode_capture(good + chunk)
    t = before.duration_ms
    assert list(capture.events.time_ms[-4:]) == [t, t + 5, t + 5, t + 7]
    assert capture.duration_ms == t + 7


@pytest.mark.parametrize("width", [1, 2, 4])
def test_stack_ids_are_checked_at_every_width_against_the_stacks_defined(good: bytes, width: int) -> None:
    """Given event columns whose stack ids are the last stack defined, or one more, when decoded, then the
    first reads and the second is refused, whatever the width of the column."""
    stacks = len(decode_capture(good).stacks)
    code = {1: "B", 2: "H", 4: "I"}[width]
    for sid, ok in ((min(stacks, 255 if width == 1 else stacks), True), (stacks + 1, False)):
        if sid >= 1 << (8 * width):
            continue
        column = struct.pack(f"<3{code}", 0, sid, 0)
        chunk = chunk_of(bytes([0, fmt.REC_SWITCH, 1]), bytes(3), (1, bytes(3)), (1, bytes(3)), (width, column))
        if ok:
            assert decode_capture(good + chunk).events.stack[-2] == sid
        else:
            with pytest.raises(TrackerError, match=f"reference to stack {sid} before"):
                decode_capture(good + chunk, "x.lbt")


def test_a_compacted_capture_gives_back_every_chunk_even_when_cut(good: bytes, tmp_path: Path) -> None:
    """Given a closed capture, one cut inside a chunk (a killed target) and one with a chunk without
    events, when each is compacted (columns gathered, then compressed), then it is smaller and reads back
    exactly as the raw file does, down to where it was cut."""
    offsets = chunk_offsets(good)
    empty = chunk_of(bytes([0, fmt.REC_MARK, 2]) + b"hi", b"")
    for n, data in enumerate((good, good[: offsets[3] + 20], good[: offsets[2]] + empty + good[offsets[2] :])):
        path = tmp_path / f"capture{n}.lbt"
        path.write_bytes(data)
        assert fmt.compact_capture(path) < len(data) // 2
        raw, packed = decode_capture(data), read_capture(path)
        assert list(packed.events.rows()) == list(raw.events.rows())
        assert (packed.stacks, packed.marks, packed.rss, packed.end) == (raw.stacks, raw.marks, raw.rss, raw.end)
        assert packed.cut_at == raw.cut_at


def test_a_compacted_capture_without_its_address_stream_is_refused(good: bytes, tmp_path: Path) -> None:
    path = tmp_path / "capture.lbt"
    path.write_bytes(good)
    fmt.compact_capture(path)
    packed = path.read_bytes()
    first = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    first.decompress(packed[len(fmt.COMPACT_MAGIC) :])
    path.write_bytes(packed[: len(packed) - len(first.unused_data)])
    with pytest.raises(TrackerError, match="do not hold whole chunks") as err:
        read_capture(path)
    assert err.value.code == "corrupt"
