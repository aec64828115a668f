/* The module map: which shared object is loaded where, written into the capture whenever it changes so
 * that return addresses can be turned into function names and lines after the run, not in the hot path. */
#include "lbt.h" /* first: it defines _GNU_SOURCE */

#include <link.h>
#include <string.h>
#include <unistd.h>

void _lbt_exec_range_of(const void *addr, uintptr_t *lo, uintptr_t *hi);

static uintptr_t self_lo, self_hi;
static unsigned long long seen_adds, seen_subs;
static char exe_path[4096];

/* The last MODULES record body, kept so that a forked child can repeat it without walking the loader's
 * lists (the loader's lock may have been copied held by fork). */
#define SNAPSHOT_MAX (128 * 1024) /* below the smallest buffer (LEAKBENCH_BUFFER_KB >= 256) */
static uint8_t *snapshot;
static size_t snapshot_len;

void _lbt_modules_init(void) {
    _lbt_exec_range_of((const void *)_lbt_modules_init, &self_lo, &self_hi);
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    exe_path[n > 0 ? n : 0] = 0;
    if (!snapshot) snapshot = _lbt_sys_mmap(SNAPSHOT_MAX);
}

int _lbt_in_self(uintptr_t ip) { return ip - self_lo < self_hi - self_lo; }

typedef struct {
    unsigned long long adds, subs;
} counters_t;

static int read_counters(struct dl_phdr_info *info, size_t size, void *arg) {
    counters_t *c = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        c->adds = info->dlpi_adds;
        c->subs = info->dlpi_subs;
    }
    return 1; /* the counters are the same in every entry: one is enough */
}

int _lbt_modules_changed(void) {
    counters_t c = {0, 0};
    dl_iterate_phdr(read_counters, &c);
    return c.adds != seen_adds || c.subs != seen_subs;
}

typedef struct {
    uint8_t *p, *end;
    uint32_t count;
    counters_t counters;
} build_t;

static int add_module(struct dl_phdr_info *info, size_t size, void *arg) {
    build_t *b = arg;
    (void)size;
    b->counters.adds = info->dlpi_adds;
    b->counters.subs = info->dlpi_subs;
    const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : exe_path;
    size_t nlen = strlen(name);
    if (b->p + nlen + 16 + 30 * (size_t)info->dlpi_phnum > b->end) return 1; /* full: stop */
    uint32_t nseg = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) nseg += info->dlpi_phdr[i].p_type == PT_LOAD;
    b->p = _lbt_put_bytes(b->p, name, nlen);
    b->p = _lbt_put_u(b->p, info->dlpi_addr);
    b->p = _lbt_put_u(b->p, nseg);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        b->p = _lbt_put_u(b->p, ph->p_vaddr);
        b->p = _lbt_put_u(b->p, ph->p_memsz);
        b->p = _lbt_put_u(b->p, ph->p_flags);
    }
    b->count++;
    return 0;
}

/* Walks the loader's list outside our lock (dl_iterate_phdr takes the loader's lock: see writer.c on
 * lock order), then appends the record under it. */
void _lbt_modules_emit(void) {
    if (!snapshot) return;
    build_t b = {snapshot + 10, snapshot + SNAPSHOT_MAX, 0, {0, 0}};
    dl_iterate_phdr(add_module, &b);
    seen_adds = b.counters.adds;
    seen_subs = b.counters.subs;
    /* the count goes in front of the list: write it into the slack kept before the body */
    uint8_t count[10];
    size_t clen = (size_t)(_lbt_put_u(count, b.count) - count);
    uint8_t *start = snapshot + 10 - clen;
    memcpy(start, count, clen);
    size_t body = (size_t)(b.p - start);
    memmove(snapshot, start, body);
    snapshot_len = body;
    _lbt_modules_repeat();
}

/* Appends the last snapshot again (a forked child's capture starts with its parent's map). */
void _lbt_modules_repeat(void) {
    if (!snapshot_len) return;
    _lbt_lock();
    if (_lbt_active || _lbt_opt.capture[0]) {
        uint8_t *p = _lbt_reserve(snapshot_len + 8);
        if (p) {
            p = _lbt_put_tag(p, LBT_REC_MODULES);
            memcpy(p, snapshot, snapshot_len);
            _lbt_commit(p + snapshot_len);
        }
    }
    _lbt_unlock();
}
