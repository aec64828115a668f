/* Finds the real allocator functions behind ours, and serves the few allocations dlsym makes while we
 * are still looking them up from a small static pool (those are never freed back to libc). */
#include "lbt.h" /* first: it defines _GNU_SOURCE */

#include <dlfcn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

lbt_real_t _lbt_real;
int _lbt_real_ready;

/* The pool: a bump allocator over static memory. Each block is preceded by its size so that a realloc
 * of a pool block can copy it out. dlsym needs well under 1 KiB; 64 KiB leaves room for other
 * preloaded libraries that allocate during our start-up. */
#define POOL_SIZE (64 * 1024)
static _Alignas(64) unsigned char pool[POOL_SIZE];
static size_t pool_used; /* advanced with an atomic add: two threads may race at start-up */

void *_lbt_pool_alloc(size_t size, size_t align, int zero) {
    (void)zero; /* static memory starts zeroed and is never reused */
    if (align < 16) align = 16;
    size_t need = size + align + 16;
    size_t start = __atomic_fetch_add(&pool_used, need, __ATOMIC_RELAXED);
    if (start + need > POOL_SIZE) return NULL;
    uintptr_t base = (uintptr_t)(pool + start) + 16;
    uintptr_t p = (base + align - 1) & ~(uintptr_t)(align - 1);
    ((size_t *)p)[-1] = size;
    return (void *)p;
}

int _lbt_pool_owns(const void *p) { return (const unsigned char *)p >= pool && (const unsigned char *)p < pool + POOL_SIZE; }

size_t _lbt_pool_size(const void *p) { return ((const size_t *)p)[-1]; }

/* Our own memory (buffers, tables) comes straight from the kernel, never through the hooks. */
void *_lbt_sys_mmap(size_t len) {
    long r = syscall(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r < 0 && r > -4096) return NULL;
    return (void *)r;
}

void _lbt_sys_munmap(void *p, size_t len) {
    if (p) syscall(SYS_munmap, p, len);
}

typedef void *(*dlsym_fn)(void *, const char *);

void _lbt_resolve_real(void) {
    static int resolving;
    if (_lbt_real_ready) return;
    /* A second caller while we resolve (dlsym -> calloc -> malloc) must not start over: it is served
     * from the pool by the hooks, which test _lbt_real.malloc before calling it. */
    if (__atomic_exchange_n(&resolving, 1, __ATOMIC_ACQ_REL)) return;
    /* dlsym itself is interposed (see interpose.c), so the real one comes from dlvsym, which is not. */
    dlsym_fn real_dlsym = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!real_dlsym) real_dlsym = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    if (!real_dlsym) real_dlsym = dlsym; /* another libc: our dlsym forwards nothing special then */
    lbt_real_t r;
    memset(&r, 0, sizeof r);
    r.dlsym = real_dlsym;
#define RESOLVE(field, name) *(void **)&r.field = real_dlsym(RTLD_NEXT, name)
    RESOLVE(calloc, "calloc");
    RESOLVE(realloc, "realloc");
    RESOLVE(reallocarray, "reallocarray");
    RESOLVE(free, "free");
    RESOLVE(posix_memalign, "posix_memalign");
    RESOLVE(aligned_alloc, "aligned_alloc");
    RESOLVE(memalign, "memalign");
    RESOLVE(valloc, "valloc");
    RESOLVE(pvalloc, "pvalloc");
    RESOLVE(mmap, "mmap");
    RESOLVE(munmap, "munmap");
    RESOLVE(exit_, "_exit");
    RESOLVE(malloc, "malloc");
#undef RESOLVE
    /* Publish everything but malloc first, then malloc: the hooks use malloc's pointer as the "ready"
     * test, so no hook can see a half-filled table. */
    void *(*m)(size_t) = r.malloc;
    r.malloc = NULL;
    _lbt_real = r;
    __atomic_store_n(&_lbt_real.malloc, m, __ATOMIC_RELEASE);
    __atomic_store_n(&_lbt_real_ready, 1, __ATOMIC_RELEASE);
}

/* dlsym(handle, "malloc") with a specific library's handle (ctypes.CDLL("libc.so.6").malloc) searches
 * only that library's scope and so would hand out libc's malloc, bypassing the preload. For the names
 * we interpose we return our own function instead, which forwards to the same real one. */
extern void *malloc(size_t);
extern void *calloc(size_t, size_t);
extern void *realloc(void *, size_t);
extern void *reallocarray(void *, size_t, size_t);
extern void free(void *);
extern int posix_memalign(void **, size_t, size_t);
extern void *aligned_alloc(size_t, size_t);
extern void *memalign(size_t, size_t);
extern void *valloc(size_t);
extern void *pvalloc(size_t);
extern void *mmap(void *, size_t, int, int, int, off_t);
extern void *mmap64(void *, size_t, int, int, int, off_t);
extern int munmap(void *, size_t);

void *_lbt_hook_for(const char *name, void *found) {
    static const struct {
        const char *name;
        void *hook;
    } table[] = {
        {"malloc", (void *)malloc},
        {"calloc", (void *)calloc},
        {"realloc", (void *)realloc},
        {"reallocarray", (void *)reallocarray},
        {"free", (void *)free},
        {"posix_memalign", (void *)posix_memalign},
        {"aligned_alloc", (void *)aligned_alloc},
        {"memalign", (void *)memalign},
        {"valloc", (void *)valloc},
        {"pvalloc", (void *)pvalloc},
        {"mmap", (void *)mmap},
        {"mmap64", (void *)mmap64},
        {"munmap", (void *)munmap},
    };
    if (!found || !name) return found;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(name, table[i].name) == 0) {
            /* only swap libc's own definition: a library that defines its own malloc keeps it */
            Dl_info info;
            if (dladdr(found, &info) && info.dli_fname && strstr(info.dli_fname, "libc.so")) return table[i].hook;
            return found;
        }
    }
    return found;
}
