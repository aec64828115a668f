/* Reads the tracker's configuration from LEAKBENCH_* environment variables, once, at start-up; a bad
 * value warns on stderr and falls back to the default: the host program must never fail because of us. */
#include "lbt.h" /* first: it defines _GNU_SOURCE */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

lbt_options_t _lbt_opt;

typedef struct {
    const char *name;
    long *value;
    long fallback, min, max;
    const char *meaning;
} option_t;

static option_t options[] = {
    {"LEAKBENCH_TICK_MS", &_lbt_opt.tick_ms, 20, 1, 100, "milliseconds between RSS ticks and flushes"},
    {"LEAKBENCH_NATIVE_DEPTH", &_lbt_opt.native_depth, 64, 0, LBT_MAX_NATIVE, "native frames kept (0: none)"},
    {"LEAKBENCH_PYTHON_STACKS", &_lbt_opt.python_stacks, 1, 0, 1, "1: record Python frames"},
    {"LEAKBENCH_PYTHON_DEPTH", &_lbt_opt.python_depth, 128, 1, LBT_MAX_PYTHON, "Python frames kept"},
    {"LEAKBENCH_TRACK_MMAP", &_lbt_opt.track_mmap, 1, 0, 1, "1: record anonymous mmap/munmap"},
    {"LEAKBENCH_FOLLOW_FORK", &_lbt_opt.follow_fork, 1, 0, 1, "1: a forked child writes its own capture"},
    {"LEAKBENCH_ALL_PROCESSES", &_lbt_opt.all_processes, 0, 0, 1, "1: track programs with no Python too"},
    {"LEAKBENCH_BUFFER_KB", &_lbt_opt.buffer_kb, 1024, 256, 65536, "size of the record buffer"},
    {"LEAKBENCH_DEBUG", &_lbt_opt.debug, 0, 0, 1, "1: say what the tracker does on stderr"},
    {"LEAKBENCH_FAST_UNWIND", &_lbt_opt.fast_unwind, 1, 0, 1, "1: cached CFI unwinding, 0: libgcc's only"},
};

void _lbt_warn(const char *fmt, ...) {
    char line[512];
    int n = snprintf(line, sizeof line, "leakbench tracker [%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t ignored = write(2, line, len);
    (void)ignored;
}

void _lbt_options_load(void) {
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        option_t *o = &options[i];
        *o->value = o->fallback;
        const char *text = getenv(o->name);
        if (!text || !*text) continue;
        char *end;
        errno = 0;
        long v = strtol(text, &end, 10);
        if (errno || *end || v < o->min || v > o->max) {
            _lbt_warn("ignoring %s=%.40s: want an integer in %ld..%ld (%s); using %ld", o->name, text, o->min,
                      o->max, o->meaning, o->fallback);
            continue;
        }
        *o->value = v;
    }
    const char *capture = getenv("LEAKBENCH_CAPTURE");
    _lbt_opt.capture[0] = 0;
    if (capture && *capture) {
        if (strlen(capture) >= sizeof _lbt_opt.capture - 32) _lbt_warn("LEAKBENCH_CAPTURE is too long; not tracking");
        else strcpy(_lbt_opt.capture, capture);
    }
}
