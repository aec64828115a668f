/* The tracker's internal API: what interpose.c may call, and what the tracker's files share. */
#ifndef LBT_H
#define LBT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "format.h"

#define LBT_EXPORT __attribute__((visibility("default")))
#define LBT_LIKELY(x) __builtin_expect(!!(x), 1)
#define LBT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LBT_TLS __thread __attribute__((tls_model("initial-exec")))

#define LBT_MAX_NATIVE 128
#define LBT_MAX_PYTHON 256
#define LBT_EVENTS_PER_CHUNK 32768 /* a chunk is flushed when its event columns are full */

/* ---- real.c: the functions we interpose, resolved once; a static pool for dlsym's own start-up ---- */
typedef struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    int (*munmap)(void *, size_t);
    void *(*dlsym)(void *, const char *);
    void (*exit_)(int) __attribute__((noreturn));
} lbt_real_t;

extern lbt_real_t _lbt_real;
extern int _lbt_real_ready;
void _lbt_resolve_real(void);
void *_lbt_pool_alloc(size_t size, size_t align, int zero);
int _lbt_pool_owns(const void *p);
size_t _lbt_pool_size(const void *p);
void *_lbt_hook_for(const char *name, void *found);
void *_lbt_sys_mmap(size_t len);
void _lbt_sys_munmap(void *p, size_t len);

/* ---- options.c ---- */
typedef struct {
    char capture[4096]; /* LEAKBENCH_CAPTURE template; empty = do nothing */
    long tick_ms;
    long native_depth;
    long python_stacks;
    long python_depth;
    long track_mmap;
    long follow_fork;
    long all_processes;
    long buffer_kb;
    long debug;
    long fast_unwind;
} lbt_options_t;
extern lbt_options_t _lbt_opt;
void _lbt_options_load(void);
void _lbt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- tracker.c: recording policy (the tiny API the hooks call) ---- */
extern volatile int _lbt_active;
extern LBT_TLS int _lbt_in_hook;

/* True when this call should be recorded: tracking is on and we are not inside our own code. */
static inline int _lbt_should_record(void) { return LBT_LIKELY(!_lbt_in_hook) && _lbt_active; }

void _lbt_on_alloc(void *ptr, size_t size, int kind);
void _lbt_on_free(void *ptr);
void _lbt_on_realloc_failed(void *old, size_t size);
void _lbt_on_mmap(void *ptr, size_t len, int kind);
void _lbt_on_munmap(void *ptr, size_t len);
void _lbt_on_failed(size_t size, int kind);
void _lbt_on_exit(void);
int _lbt_mmap_kind(void *caller);

/* tracker.c internals shared with fork.c and writer.c */
void _lbt_start_capture(int forked_child);
void _lbt_stop_flusher_state(void);
int _lbt_start_flusher(void);

/* ---- writer.c: one global buffer of records, framed into checksummed chunks, flushed with write(2) ---- */
int _lbt_writer_init(size_t capacity);
int _lbt_writer_open(const char *tmpl, int forked_child);
void _lbt_lock(void);
void _lbt_unlock(void);
/* under lock: room for n bytes of side records and for one event (may flush); NULL if n can never fit */
uint8_t *_lbt_reserve(size_t n);
void _lbt_commit(uint8_t *end);
void _lbt_flush_locked(void);
void _lbt_writer_after_fork_child(void);
size_t _lbt_writer_capacity(void);
extern uint32_t _lbt_last_thread; /* thread index of the last event in this chunk; 0 = none yet */
extern uint64_t _lbt_start_ns;
/* this chunk's event columns; _lbt_reserve keeps room for one more event */
extern uint32_t _lbt_chunk_events;
extern uint32_t _lbt_side_at; /* the event position of this chunk's last side record */
extern uint8_t *_lbt_ev_op;
extern uint64_t *_lbt_ev_addr, *_lbt_ev_size;
extern uint32_t *_lbt_ev_stack;

/* ---- stack.c: native unwinding and the stack/code tables (ids sent once) ---- */
typedef struct {
    const void *code;
    uint32_t lasti;
    uint8_t entry;
} lbt_pyframe_t;

typedef struct {
    uint64_t native[LBT_MAX_NATIVE];
    lbt_pyframe_t py[LBT_MAX_PYTHON];
    uint32_t nnative;
    uint32_t npy;
} lbt_stack_t;

void _lbt_stack_init(void);
void _lbt_unwind_init(void);
int _lbt_fast_unwind(uint64_t *out, uint32_t max, uint32_t stop_after); /* -1: use _Unwind_Backtrace */
void _lbt_capture_stack(lbt_stack_t *st);
uint32_t _lbt_intern_stack_locked(const lbt_stack_t *st); /* under lock; emits STACK/CODE records */
void _lbt_tables_reset(void);
int _lbt_tables_init(void);

/* ---- pystack.c: CPython frames of the calling thread, read in place (3.11 and later) ---- */
int _lbt_python_init(void); /* 1 if the process runs an interpreter (3.11+), its frames readable or not */
int _lbt_python_present(void);
uint32_t _lbt_python_unreadable(void); /* 0, or LBT_FLAG_PYTHON_UNREADABLE [| LBT_FLAG_FREE_THREADED] */
uint32_t _lbt_python_version(void);
uint32_t _lbt_python_walk(lbt_pyframe_t *out, uint32_t max, uint32_t *groups);
int _lbt_python_finalizing(void);
int _lbt_python_code_info(const void *code, uint64_t *fingerprint);
uint8_t *_lbt_python_put_code(uint8_t *p, const void *code); /* CODE record body, at most LBT_CODE_MAX bytes */
uint32_t _lbt_python_line(const void *code, uint32_t lasti);     /* the source line running at lasti */
#define LBT_CODE_MAX (64 + 2 * 4 * 4096) /* names are cut at 4096 characters of up to 4 bytes */
int _lbt_in_eval(uintptr_t ip);
int _lbt_in_interpreter(uintptr_t ip);

/* ---- modules.c: the module map for symbolisation after the run ---- */
void _lbt_modules_init(void);
int _lbt_modules_changed(void);
void _lbt_modules_emit(void); /* takes the lock itself */
void _lbt_modules_repeat(void);
void _lbt_exec_range_of(const void *addr, uintptr_t *lo, uintptr_t *hi);
int _lbt_in_self(uintptr_t ip);

/* ---- fork.c ---- */
void _lbt_fork_install(void);

/* ---- encoders (varints as in FORMAT.md) ---- */
static inline uint8_t *_lbt_put_u(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}
static inline uint8_t *_lbt_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) *p++ = (uint8_t)(v >> (8 * i));
    return p;
}
/* A side record starts with the events recorded since the chunk's previous side record (the first: since
 * the chunk began), then its tag. Every record started this way must be committed. */
static inline uint8_t *_lbt_put_tag(uint8_t *p, int tag) {
    p = _lbt_put_u(p, _lbt_chunk_events - _lbt_side_at);
    _lbt_side_at = _lbt_chunk_events;
    *p++ = (uint8_t)tag;
    return p;
}
/* Under lock, after an _lbt_reserve that did not fail. For FAILED, `addr` is the allocator kind. */
static inline void _lbt_put_event(int op, uint64_t addr, uint64_t size, uint32_t stack) {
    uint32_t i = _lbt_chunk_events++;
    _lbt_ev_op[i] = (uint8_t)op;
    _lbt_ev_addr[i] = addr;
    _lbt_ev_size[i] = size;
    _lbt_ev_stack[i] = stack;
}
static inline uint8_t *_lbt_put_bytes(uint8_t *p, const void *data, size_t n) {
    p = _lbt_put_u(p, n);
    __builtin_memcpy(p, data, n);
    return p + n;
}

#endif
