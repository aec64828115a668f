/* The libc symbols leakbench interposes, and nothing else: each forwards to the real function and tells
 * the tracker through the tiny API in lbt.h. Ordering rules are written beside the calls. */
#include "lbt.h" /* first: it defines _GNU_SOURCE */

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Until the real functions are known (dlsym may allocate while we look them up), allocations come from
 * the static pool; true only in the first microseconds of the process. */
static inline int real_missing(void) {
    if (LBT_LIKELY(_lbt_real.malloc != NULL)) return 0;
    _lbt_resolve_real();
    return _lbt_real.malloc == NULL;
}

static inline void record_alloc(void *p, size_t size, int kind) {
    if (_lbt_should_record()) {
        if (LBT_LIKELY(p != NULL)) _lbt_on_alloc(p, size, kind);
        else _lbt_on_failed(size, kind);
    }
}

LBT_EXPORT void *malloc(size_t size) {
    if (real_missing()) return _lbt_pool_alloc(size, 16, 0);
    void *p = _lbt_real.malloc(size);
    record_alloc(p, size, LBT_KIND_MALLOC);
    return p;
}

LBT_EXPORT void *calloc(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (real_missing()) return _lbt_pool_alloc(total, 16, 1);
    void *p = _lbt_real.calloc(n, size);
    record_alloc(p, total, LBT_KIND_CALLOC);
    return p;
}

LBT_EXPORT void free(void *p) {
    if (!p || LBT_UNLIKELY(_lbt_pool_owns(p))) return; /* pool blocks are never handed back to libc */
    /* Recorded before the real free: once libc has it back, another thread can be handed the same address
     * and record its allocation, which must come after this free in the capture. */
    if (_lbt_should_record()) _lbt_on_free(p);
    if (LBT_UNLIKELY(!_lbt_real.free)) return; /* impossible once malloc resolved; leak rather than crash */
    _lbt_real.free(p);
}

LBT_EXPORT void *realloc(void *old, size_t size) {
    if (real_missing() || (old && _lbt_pool_owns(old))) {
        void *p = real_missing() ? _lbt_pool_alloc(size, 16, 0) : malloc(size);
        if (p && old) memcpy(p, old, size < _lbt_pool_size(old) ? size : _lbt_pool_size(old));
        return p;
    }
    int rec = _lbt_should_record();
    /* The old block is recorded as freed before the real call, for the reason given in free(). */
    if (rec && old) _lbt_on_free(old);
    void *p = _lbt_real.realloc(old, size);
    if (rec) {
        if (p) _lbt_on_alloc(p, size, LBT_KIND_REALLOC);
        else if (size && old) _lbt_on_realloc_failed(old, size); /* old is still live: the reader restores it */
        else if (size) _lbt_on_failed(size, LBT_KIND_REALLOC);
    }
    return p;
}

LBT_EXPORT void *reallocarray(void *old, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(old, total); /* same behaviour as glibc's, and recorded once */
}

LBT_EXPORT int posix_memalign(void **out, size_t align, size_t size) {
    if (real_missing()) {
        *out = _lbt_pool_alloc(size, align, 0);
        return *out ? 0 : ENOMEM;
    }
    int r = _lbt_real.posix_memalign(out, align, size);
    if (_lbt_should_record()) {
        if (r == 0) _lbt_on_alloc(*out, size, LBT_KIND_POSIX_MEMALIGN);
        else if (r == ENOMEM) _lbt_on_failed(size, LBT_KIND_POSIX_MEMALIGN);
    }
    return r;
}

LBT_EXPORT void *aligned_alloc(size_t align, size_t size) {
    if (real_missing()) return _lbt_pool_alloc(size, align, 0);
    void *p = _lbt_real.aligned_alloc(align, size);
    record_alloc(p, size, LBT_KIND_ALIGNED_ALLOC);
    return p;
}

LBT_EXPORT void *memalign(size_t align, size_t size) {
    if (real_missing()) return _lbt_pool_alloc(size, align, 0);
    void *p = _lbt_real.memalign(align, size);
    record_alloc(p, size, LBT_KIND_MEMALIGN);
    return p;
}

LBT_EXPORT void *valloc(size_t size) {
    if (real_missing()) return _lbt_pool_alloc(size, 4096, 0);
    void *p = _lbt_real.valloc(size);
    record_alloc(p, size, LBT_KIND_VALLOC);
    return p;
}

LBT_EXPORT void *pvalloc(size_t size) {
    if (real_missing()) return _lbt_pool_alloc((size + 4095) & ~(size_t)4095, 4096, 0);
    void *p = _lbt_real.pvalloc(size);
    record_alloc(p, size, LBT_KIND_PVALLOC);
    return p;
}

static void *raw_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return MAP_FAILED;
    }
    return (void *)r;
}

LBT_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (real_missing() || !_lbt_real.mmap) return raw_mmap(addr, len, prot, flags, fd, off);
    /* Only anonymous mappings are heap; file mappings are not memory the program allocated. */
    int rec = (flags & MAP_ANONYMOUS) && _lbt_should_record();
    /* MAP_FIXED silently replaces what was mapped there: recorded as an unmap first, like free(). */
    if (rec && (flags & MAP_FIXED)) _lbt_on_munmap(addr, len);
    void *p = _lbt_real.mmap(addr, len, prot, flags, fd, off);
    if (rec) {
        if (p != MAP_FAILED) _lbt_on_mmap(p, len, _lbt_mmap_kind(__builtin_return_address(0)));
        else if (errno == ENOMEM) _lbt_on_failed(len, LBT_KIND_MMAP);
    }
    return p;
}

LBT_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) __attribute__((alias("mmap"), copy(mmap)));

LBT_EXPORT int munmap(void *addr, size_t len) {
    if (real_missing() || !_lbt_real.munmap) return (int)syscall(SYS_munmap, addr, len);
    /* Recorded before the real munmap, for the same reason as free(). */
    if (_lbt_should_record()) _lbt_on_munmap(addr, len);
    return _lbt_real.munmap(addr, len);
}

/* dlsym: see _lbt_hook_for in real.c. RTLD_NEXT is resolved relative to the caller's return address, so
 * that path must leave as a tail call (a jmp), keeping the original caller's return address on the stack;
 * a test checks the built library does. */
__attribute__((optimize("optimize-sibling-calls"))) LBT_EXPORT void *dlsym(void *handle, const char *name) {
    if (LBT_UNLIKELY(!_lbt_real.dlsym)) {
        _lbt_resolve_real();
        if (!_lbt_real.dlsym) return dlvsym(handle, name, "GLIBC_2.2.5");
    }
    if (handle != RTLD_NEXT && handle != RTLD_DEFAULT) return _lbt_hook_for(name, _lbt_real.dlsym(handle, name));
    return _lbt_real.dlsym(handle, name);
}

/* os._exit() and multiprocessing children leave through _exit, skipping destructors: flush first. */
LBT_EXPORT void _exit(int status) {
    _lbt_on_exit();
    if (_lbt_real.exit_) _lbt_real.exit_(status);
    for (;;) syscall(SYS_exit_group, status);
}

LBT_EXPORT void _Exit(int status) { _exit(status); }
