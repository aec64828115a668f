/* The recording policy: start-up and shutdown, what each hook records and in which order, thread ids,
 * timestamps, RSS ticks and the flusher thread that bounds what a SIGKILL can lose. */
#include "lbt.h" /* first: it defines _GNU_SOURCE */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

volatile int _lbt_active;
LBT_TLS int _lbt_in_hook;

/* The stack being captured lives in thread-local storage, not on the hook's stack: a few KiB less for
 * threads with small stacks. A signal handler that allocates while we use it finds _lbt_in_hook set
 * and is not recorded, so the buffer is never used twice at once. */
static LBT_TLS lbt_stack_t tls_stack;
static LBT_TLS uint32_t tls_thread, tls_generation;

static uint32_t generation = 1, next_thread = 1;
static pid_t capture_pid;
static uint64_t last_ms = UINT64_MAX;
static uint64_t n_allocs, n_frees;
static int finalizing_marked;
static int statm_fd = -1;
static long page_size;

/* ---- helpers used under the lock ---- */

static uint64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    uint64_t ns = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
    return ns > _lbt_start_ns ? (ns - _lbt_start_ns) / 1000000u : 0;
}

/* Room for a record of at most n bytes plus what must precede it: a TIME when the millisecond changed
 * (begin_untimed); for events also a THREAD the first time a thread shows up and a SWITCH when the
 * thread differs from the last record's (begin_record). */
static uint8_t *begin_untimed(size_t n) {
    uint8_t *p = _lbt_reserve(n + 64);
    if (!p) return NULL;
    uint64_t ms = now_ms();
    /* TIME carries the change since the previous TIME (the first: since the start). The clock is read
     * under the lock, so it never goes back; the test guards against it anyway. */
    if (ms != last_ms && (last_ms == UINT64_MAX || ms > last_ms)) {
        p = _lbt_put_tag(p, LBT_REC_TIME);
        p = _lbt_put_u(p, last_ms == UINT64_MAX ? ms : ms - last_ms);
        last_ms = ms;
    }
    return p;
}

/* ... and for records that belong to a thread (allocation events). */
static uint8_t *begin_record(size_t n) {
    uint8_t *p = begin_untimed(n);
    if (!p) return NULL;
    if (tls_generation != generation) {
        tls_generation = generation;
        tls_thread = next_thread++;
        char name[17] = {0};
        prctl(PR_GET_NAME, name, 0, 0, 0);
        p = _lbt_put_tag(p, LBT_REC_THREAD);
        p = _lbt_put_u(p, tls_thread);
        p = _lbt_put_u(p, (uint64_t)syscall(SYS_gettid));
        p = _lbt_put_bytes(p, name, strnlen(name, 16));
    }
    if (_lbt_last_thread != tls_thread) {
        p = _lbt_put_tag(p, LBT_REC_SWITCH);
        p = _lbt_put_u(p, tls_thread);
        _lbt_last_thread = tls_thread;
    }
    return p;
}

static void mark_locked(const char *label) {
    size_t n = strnlen(label, 200);
    uint8_t *p = begin_untimed(n + 16);
    if (!p) return;
    p = _lbt_put_tag(p, LBT_REC_MARK);
    p = _lbt_put_bytes(p, label, n);
    _lbt_commit(p);
}

static void note_finalizing_locked(void) {
    /* The moment the interpreter starts finalising is where "the program's work ended": memory still
     * live then and only released by the interpreter's teardown is what the program kept. */
    if (!finalizing_marked && _lbt_python_finalizing()) {
        finalizing_marked = 1;
        mark_locked("python-finalizing");
    }
}

/* An event: its TIME/THREAD/SWITCH side records first, then one row of the event columns. */
static void put_event(int op, uint64_t addr, size_t size, uint32_t stack) {
    uint8_t *p = begin_record(0);
    if (!p) return;
    _lbt_commit(p);
    _lbt_put_event(op, addr, size, stack);
}

/* ---- what the hooks call; each saves errno (the caller may be about to read it) ---- */

void _lbt_on_alloc(void *ptr, size_t size, int kind) {
    int saved = errno;
    _lbt_in_hook = 1;
    _lbt_capture_stack(&tls_stack); /* outside the lock: unwinding may take the loader's lock */
    _lbt_lock();
    if (_lbt_active) {
        uint32_t stack = _lbt_intern_stack_locked(&tls_stack);
        put_event(kind, (uintptr_t)ptr, size, stack);
        n_allocs++;
    }
    _lbt_unlock();
    _lbt_in_hook = 0;
    errno = saved;
}

void _lbt_on_mmap(void *ptr, size_t len, int kind) {
    if (!_lbt_opt.track_mmap) return;
    _lbt_on_alloc(ptr, len, kind);
}

static void on_release(int op, void *ptr, size_t len) {
    int saved = errno;
    _lbt_in_hook = 1;
    _lbt_lock();
    if (_lbt_active) {
        if (LBT_UNLIKELY(!finalizing_marked)) note_finalizing_locked();
        put_event(op, (uintptr_t)ptr, len, 0);
        n_frees++;
    }
    _lbt_unlock();
    _lbt_in_hook = 0;
    errno = saved;
}

void _lbt_on_free(void *ptr) { on_release(LBT_OP_FREE, ptr, 0); }

void _lbt_on_munmap(void *ptr, size_t len) {
    if (_lbt_opt.track_mmap) on_release(LBT_OP_MUNMAP, ptr, len);
}

/* A failed allocation is flushed at once: it is often the last thing a process does. */
static void failed(size_t size, int kind, void *restore) {
    int saved = errno;
    _lbt_in_hook = 1;
    _lbt_capture_stack(&tls_stack);
    _lbt_lock();
    if (_lbt_active) {
        uint32_t stack = _lbt_intern_stack_locked(&tls_stack);
        put_event(LBT_OP_FAILED, (uint64_t)kind, size, stack);
        if (restore) put_event(LBT_OP_RESTORE, (uintptr_t)restore, 0, 0);
        _lbt_flush_locked();
    }
    _lbt_unlock();
    _lbt_in_hook = 0;
    errno = saved;
}

void _lbt_on_failed(size_t size, int kind) { failed(size, kind, NULL); }

/* realloc failed: its block was already recorded as freed (see interpose.c) but is still live. */
void _lbt_on_realloc_failed(void *old, size_t size) { failed(size, LBT_KIND_REALLOC, old); }

int _lbt_mmap_kind(void *caller) {
    return _lbt_in_interpreter((uintptr_t)caller) ? LBT_KIND_MMAP_INTERP : LBT_KIND_MMAP;
}

/* ---- RSS ticks and the flusher ---- */

static void open_statm(void) {
    if (statm_fd >= 0) close(statm_fd);
    statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
}

static void tick_locked(uint64_t rss) {
    uint8_t *p = begin_untimed(24);
    if (!p) return;
    p = _lbt_put_tag(p, LBT_REC_RSS);
    p = _lbt_put_u(p, rss);
    _lbt_commit(p);
}

static uint64_t read_rss(void) {
    char text[128];
    if (statm_fd < 0) return 0;
    ssize_t n = pread(statm_fd, text, sizeof text - 1, 0);
    if (n <= 0) return 0;
    text[n] = 0;
    char *space = strchr(text, ' ');
    return space ? strtoull(space + 1, NULL, 10) * (uint64_t)page_size : 0;
}

static void *flusher_main(void *arg) {
    uint32_t my_generation = (uint32_t)(uintptr_t)arg;
    _lbt_in_hook = 1; /* nothing this thread does is the program's */
    prctl(PR_SET_NAME, "leakbench-flush", 0, 0, 0);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        next.tv_nsec += _lbt_opt.tick_ms * 1000000L;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
        }
        if (!_lbt_active || my_generation != generation) break;
        if (_lbt_modules_changed()) _lbt_modules_emit();
        uint64_t rss = read_rss();
        _lbt_lock();
        if (_lbt_active && my_generation == generation) {
            note_finalizing_locked();
            tick_locked(rss);
            _lbt_flush_locked();
        }
        _lbt_unlock();
    }
    return NULL;
}

int _lbt_start_flusher(void) {
    /* All signals blocked in the flusher, so that process-directed signals (SIGINT, SIGTERM, SIGCHLD)
     * keep going to the program's own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_t thread;
    int r = pthread_create(&thread, &attr, flusher_main, (void *)(uintptr_t)generation);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) _lbt_warn("cannot start the flusher thread; data is written when the buffer fills");
    return r;
}

/* ---- start and end of a capture ---- */

void _lbt_start_capture(int forked_child) {
    capture_pid = getpid();
    last_ms = UINT64_MAX;
    n_allocs = n_frees = 0;
    finalizing_marked = 0;
    page_size = sysconf(_SC_PAGESIZE);
    open_statm();
    if (_lbt_writer_open(_lbt_opt.capture, forked_child) != 0) {
        _lbt_active = 0;
        return;
    }
    _lbt_active = 1;
    if (forked_child) _lbt_modules_repeat(); /* same address space as the parent at fork */
    else _lbt_modules_emit();
    _lbt_lock();
    tick_locked(read_rss());
    _lbt_flush_locked(); /* the header and module map reach the file at once */
    _lbt_unlock();
    _lbt_start_flusher();
}

/* Called in a forked child with the tracker's lock re-initialised (fork.c). */
void _lbt_stop_flusher_state(void) {
    generation++; /* the parent's flusher does not exist here; thread ids restart */
    next_thread = 1;
    _lbt_tables_reset();
}

__attribute__((constructor)) static void lbt_init(void) {
    _lbt_in_hook = 1;
    _lbt_resolve_real();
    _lbt_options_load();
    if (!_lbt_opt.capture[0]) goto out;
    /* Programs the target execs inherit LD_PRELOAD and LEAKBENCH_CAPTURE; a shell or a compiler has no
     * Python interpreter and is left alone, unless LEAKBENCH_ALL_PROCESSES=1. */
    if (!_lbt_python_init() && !_lbt_opt.all_processes) goto out;
    _lbt_modules_init();
    _lbt_stack_init();
    if (_lbt_tables_init() != 0 || _lbt_writer_init((size_t)_lbt_opt.buffer_kb * 1024) != 0) {
        _lbt_warn("cannot allocate the tracker's buffers; not tracking");
        goto out;
    }
    _lbt_fork_install();
    _lbt_start_capture(0);
out:
    _lbt_in_hook = 0;
}

void _lbt_on_exit(void) {
    if (!_lbt_active || getpid() != capture_pid) return; /* e.g. a vfork child sharing our memory */
    int saved_hook = _lbt_in_hook;
    _lbt_in_hook = 1;
    /* a library loaded since the last tick must be in the map, or its frames cannot be named */
    if (_lbt_modules_changed()) _lbt_modules_emit();
    uint64_t rss = read_rss();
    _lbt_lock();
    if (_lbt_active) {
        note_finalizing_locked();
        tick_locked(rss);
        uint8_t *p = begin_untimed(32);
        if (p) {
            p = _lbt_put_tag(p, LBT_REC_END);
            p = _lbt_put_u(p, n_allocs);
            p = _lbt_put_u(p, n_frees);
            _lbt_commit(p);
        }
        _lbt_flush_locked();
        _lbt_active = 0; /* what other threads still do after this is not recorded */
    }
    _lbt_unlock();
    _lbt_in_hook = saved_hook;
}

__attribute__((destructor)) static void lbt_fini(void) { _lbt_on_exit(); }

/* ---- public API for the in-target agent (looked up with dlsym; absent when not preloaded) ---- */

LBT_EXPORT void lbt_mark(const char *label) {
    if (!_lbt_active || !label) return;
    _lbt_in_hook++;
    _lbt_lock();
    if (_lbt_active) {
        mark_locked(label);
        _lbt_flush_locked();
    }
    _lbt_unlock();
    _lbt_in_hook--;
}

LBT_EXPORT void lbt_flush(void) {
    if (!_lbt_active) return;
    _lbt_in_hook++;
    _lbt_lock();
    if (_lbt_active) _lbt_flush_locked();
    _lbt_unlock();
    _lbt_in_hook--;
}
