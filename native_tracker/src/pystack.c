/* Reads the calling thread's CPython 3.11 frames in place, at allocation time: no profile function, so
 * no cost per Python call. libpython is never linked: its symbols are looked up at start-up, the
 * interpreter's version checked at run time, and any other version gets native-only stacks.
 *
 * Why this is safe: only the calling thread's frames are read, and that thread is inside malloc, so the
 * interpreter cannot be changing them; each frame holds a strong reference to its code object. */
#include "lbt.h" /* first: it defines _GNU_SOURCE */

#include <dlfcn.h>
#include <link.h>
#include <string.h>

/* ---- the CPython 3.11 layouts we read (a mirror; checked against the real headers when built on 3.11) */
typedef struct py311_frame {
    void *f_func, *f_globals, *f_builtins, *f_locals;
    void *f_code;
    void *frame_obj;
    struct py311_frame *previous;
    uint16_t *prev_instr;
    int stacktop;
    _Bool is_entry;
    char owner;
} py311_frame;

typedef struct {
    uint8_t use_tracing;
    py311_frame *current_frame;
    void *previous;
} py311_cframe;

#define TSTATE_CFRAME_OFFSET 56 /* offsetof(PyThreadState, cframe) */

typedef struct {
    intptr_t ob_refcnt;
    void *ob_type;
    intptr_t ob_size;
    void *co_consts, *co_names, *co_exceptiontable;
    int co_flags;
    short co_warmup, _co_linearray_entry_size;
    int co_argcount, co_posonlyargcount, co_kwonlyargcount, co_stacksize, co_firstlineno;
    int co_nlocalsplus, co_nlocals, co_nplaincellvars, co_ncellvars, co_nfreevars;
    void *co_localsplusnames, *co_localspluskinds;
    void *co_filename, *co_name, *co_qualname, *co_linetable;
    void *co_weakreflist, *_co_code;
    char *_co_linearray;
    int _co_firsttraceable;
    void *co_extra;
    char co_code_adaptive[1];
} py311_code;

typedef struct {
    intptr_t ob_refcnt;
    void *ob_type;
    intptr_t length;
    intptr_t hash;
    uint32_t state; /* interned:2 kind:3 compact:1 ascii:1 ready:1 */
    void *wstr;
} py311_ascii;

typedef struct {
    py311_ascii base;
    intptr_t utf8_length;
    char *utf8;
    intptr_t wstr_length;
} py311_compact;

typedef struct {
    intptr_t ob_refcnt;
    void *ob_type;
    intptr_t ob_size;
    intptr_t ob_shash;
    char ob_sval[1];
} py311_bytes;

#if defined(__has_include)
#if __has_include(<Python.h>)
#include <Python.h>
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#define SAME_OFFSET(mine, theirs, field) _Static_assert(offsetof(mine, field) == offsetof(theirs, field), #field)
SAME_OFFSET(py311_frame, _PyInterpreterFrame, f_code);
SAME_OFFSET(py311_frame, _PyInterpreterFrame, previous);
SAME_OFFSET(py311_frame, _PyInterpreterFrame, prev_instr);
SAME_OFFSET(py311_frame, _PyInterpreterFrame, is_entry);
SAME_OFFSET(py311_frame, _PyInterpreterFrame, owner);
SAME_OFFSET(py311_cframe, _PyCFrame, current_frame);
_Static_assert(offsetof(PyThreadState, cframe) == TSTATE_CFRAME_OFFSET, "cframe");
SAME_OFFSET(py311_code, PyCodeObject, co_firstlineno);
SAME_OFFSET(py311_code, PyCodeObject, co_filename);
SAME_OFFSET(py311_code, PyCodeObject, co_qualname);
SAME_OFFSET(py311_code, PyCodeObject, co_linetable);
SAME_OFFSET(py311_code, PyCodeObject, _co_firsttraceable);
SAME_OFFSET(py311_code, PyCodeObject, co_code_adaptive);
_Static_assert(sizeof(py311_ascii) == sizeof(PyASCIIObject), "PyASCIIObject");
_Static_assert(sizeof(py311_compact) == sizeof(PyCompactUnicodeObject), "PyCompactUnicodeObject");
SAME_OFFSET(py311_bytes, PyBytesObject, ob_sval);
#endif
#endif
#endif

#define FRAME_OWNED_BY_GENERATOR 1

static void *(*get_tstate)(void);
static int (*is_initialized)(void);
static int (*is_finalizing)(void);
static uint32_t py_version;
static int present;
static uintptr_t eval_start, eval_end;
static uintptr_t interp_lo, interp_hi;

typedef struct {
    uintptr_t base; /* the object's load address, as dladdr reports it */
    uintptr_t lo, hi;
} range_search_t;

static int find_exec_range(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    range_search_t *r = arg;
    uintptr_t first = 0;
    int have = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        if (!have) {
            first = info->dlpi_addr + ph->p_vaddr;
            have = 1;
        }
    }
    if (!have || (first & ~(uintptr_t)0xFFF) != (r->base & ~(uintptr_t)0xFFF)) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
            if (!r->lo || lo < r->lo) r->lo = lo;
            if (hi > r->hi) r->hi = hi;
        }
    }
    return 1;
}

/* The executable address range of the object that contains `addr`. */
void _lbt_exec_range_of(const void *addr, uintptr_t *lo, uintptr_t *hi) {
    Dl_info info;
    range_search_t r = {0, 0, 0};
    if (dladdr(addr, &info) && info.dli_fbase) {
        r.base = (uintptr_t)info.dli_fbase;
        dl_iterate_phdr(find_exec_range, &r);
    }
    *lo = r.lo;
    *hi = r.hi;
}

int _lbt_python_init(void) {
    void *(*sym)(void *, const char *) = _lbt_real.dlsym;
    if (!sym) return 0;
    const unsigned long *version = sym(RTLD_DEFAULT, "Py_Version");
    void *eval = sym(RTLD_DEFAULT, "_PyEval_EvalFrameDefault");
    if (!version || !eval) return 0; /* no interpreter here, or one older than 3.11 */
    present = 1;
    py_version = (uint32_t)*version;
    _lbt_exec_range_of(version, &interp_lo, &interp_hi);
    if ((py_version >> 16) != 0x030B) {
        if (_lbt_opt.debug) _lbt_warn("Python %x: native stacks only", py_version);
        return 1;
    }
    *(void **)&get_tstate = sym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
    *(void **)&is_initialized = sym(RTLD_DEFAULT, "Py_IsInitialized");
    *(void **)&is_finalizing = sym(RTLD_DEFAULT, "_Py_IsFinalizing");
    if (!get_tstate || !is_initialized || !is_finalizing) {
        get_tstate = NULL;
        return 1;
    }
    /* The size of the eval loop's symbol, to place Python frames where it runs them in native stacks. */
    Dl_info info;
    const ElfW(Sym) *symbol = NULL;
    if (dladdr1(eval, &info, (void **)&symbol, RTLD_DL_SYMENT) && symbol && symbol->st_size) {
        eval_start = (uintptr_t)eval;
        eval_end = eval_start + symbol->st_size;
    }
    return 1;
}

int _lbt_python_present(void) { return present; }
uint32_t _lbt_python_version(void) { return py_version; }
int _lbt_in_eval(uintptr_t ip) { return ip - eval_start < eval_end - eval_start; }
int _lbt_in_interpreter(uintptr_t ip) { return ip - interp_lo < interp_hi - interp_lo; }
int _lbt_python_finalizing(void) { return is_finalizing && is_finalizing(); }

uint32_t _lbt_python_walk(lbt_pyframe_t *out, uint32_t max, uint32_t *groups) {
    *groups = 0;
    /* Before Py_Initialize the thread-state key is not set up; during finalisation other threads'
     * states are being freed. Either way: native stack only. */
    if (!get_tstate || !is_initialized() || is_finalizing()) return 0;
    char *tstate = get_tstate();
    if (!tstate) return 0; /* a thread the interpreter does not know */
    py311_cframe *cframe = *(py311_cframe **)(tstate + TSTATE_CFRAME_OFFSET);
    if (!cframe) return 0;
    uint32_t n = 0, g = 0;
    for (py311_frame *f = cframe->current_frame; f && n < max; f = f->previous) {
        py311_code *code = f->f_code;
        if (!code) break;
        intptr_t lasti = f->prev_instr - (uint16_t *)code->co_code_adaptive;
        if (lasti < 0) lasti = 0; /* a frame not started yet points just before its first instruction */
        out[n].code = code;
        out[n].lasti = (uint32_t)lasti;
        out[n].entry = f->is_entry;
        g += f->is_entry;
        n++;
    }
    *groups = g;
    return n;
}

/* A fingerprint that changes when a new code object takes the address of a dead one. */
int _lbt_python_code_info(const void *code, uint64_t *fingerprint) {
    const py311_code *c = code;
    uint64_t h = (uint64_t)(uintptr_t)c->co_filename * 0x9E3779B97F4A7C15ull;
    h ^= (uint64_t)(uintptr_t)c->co_qualname + ((uint64_t)(uint32_t)c->co_firstlineno << 40);
    h ^= (uint64_t)(uintptr_t)c->co_linetable * 0xC2B2AE3D27D4EB4Full;
    *fingerprint = h;
    return 0;
}

/* UTF-8 of a compact str, written without allocating; at most `room` bytes (else cut). */
static uint8_t *put_str(uint8_t *p, const void *obj, size_t room) {
    const py311_ascii *s = obj;
    if (!s || !((s->state >> 5) & 1)) return _lbt_put_bytes(p, "?", 1);
    unsigned kind = (s->state >> 2) & 7, ascii = (s->state >> 6) & 1;
    size_t n = (size_t)s->length;
    if (ascii) {
        if (n > room) n = room;
        return _lbt_put_bytes(p, (const char *)obj + sizeof(py311_ascii), n);
    }
    const uint8_t *data = (const uint8_t *)obj + sizeof(py311_compact);
    /* encode into a scratch area after a maximal varint slot, then move the length in front */
    uint8_t *body = p + 10, *o = body;
    for (size_t i = 0; i < n && (size_t)(o - body) + 4 <= room; i++) {
        uint32_t c = kind == 1 ? data[i] : kind == 2 ? ((const uint16_t *)data)[i] : ((const uint32_t *)data)[i];
        if (c < 0x80) *o++ = (uint8_t)c;
        else if (c < 0x800) {
            *o++ = (uint8_t)(0xC0 | (c >> 6));
            *o++ = (uint8_t)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            if (c >= 0xD800 && c < 0xE000) c = 0xFFFD; /* lone surrogate: not encodable */
            *o++ = (uint8_t)(0xE0 | (c >> 12));
            *o++ = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (uint8_t)(0x80 | (c & 0x3F));
        } else {
            *o++ = (uint8_t)(0xF0 | (c >> 18));
            *o++ = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
            *o++ = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (uint8_t)(0x80 | (c & 0x3F));
        }
    }
    size_t len = (size_t)(o - body);
    uint8_t *after_len = _lbt_put_u(p, len);
    memmove(after_len, body, len);
    return after_len + len;
}

#define MAX_NAME 4096

/* The body of a CODE record: firstlineno, filename, qualname (see FORMAT.md); at most LBT_CODE_MAX bytes. */
uint8_t *_lbt_python_put_code(uint8_t *p, const void *code) {
    const py311_code *c = code;
    p = _lbt_put_u(p, (uint64_t)(c->co_firstlineno < 0 ? 0 : c->co_firstlineno));
    p = put_str(p, c->co_filename, MAX_NAME);
    return put_str(p, c->co_qualname, MAX_NAME);
}

/* CPython 3.11's location table (Objects/locations.md): varints of 6-bit groups, bit 6 = more follows. */
static const uint8_t *lt_varint(const uint8_t *p, const uint8_t *end, uint32_t *out) {
    uint32_t v = 0;
    unsigned shift = 0;
    while (p < end) {
        uint8_t b = *p++;
        if (shift < 32) v |= (uint32_t)(b & 63) << shift;
        shift += 6;
        if (!(b & 64)) break;
    }
    *out = v;
    return p;
}

static const uint8_t *lt_svarint(const uint8_t *p, const uint8_t *end, int64_t *out) {
    uint32_t v;
    p = lt_varint(p, end, &v);
    *out = (v & 1) ? -(int64_t)(v >> 1) : (int64_t)(v >> 1);
    return p;
}

/* The line of the instruction at `lasti` (code units), read from the code's location table, as the
 * interpreter itself would report it; firstlineno where the table has no line. The table is an
 * immutable bytes object the code object holds, and the code object is alive: its frame is running. */
uint32_t _lbt_python_line(const void *code, uint32_t lasti) {
    const py311_code *c = code;
    int64_t first = c->co_firstlineno < 0 ? 0 : c->co_firstlineno, line = first;
    const py311_bytes *lt = c->co_linetable;
    if (!lt || lt->ob_size <= 0) return (uint32_t)first;
    const uint8_t *p = (const uint8_t *)lt->ob_sval, *end = p + lt->ob_size;
    uint64_t addr = 0;
    while (p < end) {
        uint8_t head = *p++;
        unsigned form = (head >> 3) & 15;
        int64_t here = line, delta;
        uint32_t skip;
        if (form == 15) {
            here = -1; /* no location */
        } else if (form == 14) {
            p = lt_svarint(p, end, &delta);
            here = line += delta;
            for (int k = 0; k < 3; k++) p = lt_varint(p, end, &skip); /* end line, column, end column */
        } else if (form == 13) {
            p = lt_svarint(p, end, &delta);
            here = line += delta;
        } else if (form >= 10) {
            here = line += form - 10;
            p += 2;
        } else {
            p += 1;
        }
        addr += (head & 7) + 1;
        if (lasti < addr) return (uint32_t)(here >= 0 && here <= 0x7FFFFFFF ? here : first);
    }
    return (uint32_t)first;
}
