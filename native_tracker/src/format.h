/* The capture format's constants, shared by every writer file; native_tracker/FORMAT.md is the spec and
 * leakbench/native/capture.py the one reader (a test checks that its constants agree with these). */
#ifndef LBT_FORMAT_H
#define LBT_FORMAT_H

#define LBT_FORMAT_MAGIC "\x7fLBTCAP\n" /* 8 bytes: a high byte and a newline catch text-mode mangling */
#define LBT_FORMAT_VERSION 7
#define LBT_HEADER_SIZE 64
#define LBT_CHUNK_SYNC 0x4B43u /* "CK" little-endian: each chunk header starts with it */
#define LBT_CHUNK_HEADER_SIZE 12

/* header flags */
#define LBT_FLAG_PYTHON_STACKS 0x1u
#define LBT_FLAG_NATIVE_STACKS 0x2u
#define LBT_FLAG_FORKED_CHILD 0x4u
#define LBT_FLAG_PYTHON_UNREADABLE 0x8u /* an interpreter whose frames this tracker cannot read */
#define LBT_FLAG_FREE_THREADED 0x10u    /* ... because it is a free-threaded build */

/* side record tags (after the event position: one byte, then varint fields; see FORMAT.md) */
#define LBT_REC_TIME 0x01
#define LBT_REC_RSS 0x02
#define LBT_REC_THREAD 0x03
#define LBT_REC_SWITCH 0x04
#define LBT_REC_STACK 0x09
#define LBT_REC_CODE 0x0A
#define LBT_REC_MODULES 0x0B
#define LBT_REC_MARK 0x0C
#define LBT_REC_END 0x0D

/* event operations (the operation column): an allocator kind below, or one of these */
#define LBT_OP_FREE 16
#define LBT_OP_MUNMAP 17
#define LBT_OP_FAILED 18  /* the address column holds the allocator kind */
#define LBT_OP_RESTORE 19 /* a failed realloc: the block freed just before is live again */

/* allocator kinds */
#define LBT_KIND_MALLOC 0
#define LBT_KIND_CALLOC 1
#define LBT_KIND_REALLOC 2
#define LBT_KIND_POSIX_MEMALIGN 3
#define LBT_KIND_ALIGNED_ALLOC 4
#define LBT_KIND_MEMALIGN 5
#define LBT_KIND_VALLOC 6
#define LBT_KIND_PVALLOC 7
#define LBT_KIND_MMAP 8
#define LBT_KIND_MMAP_INTERP 9 /* anonymous mmap made by the interpreter itself: pymalloc arenas, frame stacks */
#define LBT_KIND_COUNT 10

#endif
