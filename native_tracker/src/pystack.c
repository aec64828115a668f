/* Reads the calling thread's CPython frames in place, at allocation time: no profile function, so no
 * cost per Python call. libpython is never linked: its symbols are looked up at start-up and the
 * interpreter's layout chosen at run time:
 *   3.11, 3.12  tables below (the interpreters publish no layout), checked against the real headers by
 *               static assertions whenever this file is compiled with that version's Python.h;
 *   3.13 and on the `_Py_DebugOffsets` the interpreter publishes at the start of `_PyRuntime` (cookie
 *               "xdebugpy") for external readers; 3.14's version of that struct is longer, so the offsets
 *               block is read with the layout of its own minor version (3.15 and later with 3.14's,
 *               after the same checks).
 * Any other version, a free-threaded build, or offsets that fail their checks: native-only stacks, and
 * the capture's header says why (LBT_FLAG_PYTHON_UNREADABLE, LBT_FLAG_FREE_THREADED).
 *
 * Why this is safe: only the calling thread's frames are read, and that thread is inside malloc, so the
 * interpreter cannot be changing them; each frame holds a strong reference to its code object. */
#include "lbt.h" /* first: it defines _GNU_SOURCE */

#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <string.h>

#include "format.h"

/* ---- where the fields we read live: one table per layout ---- */
typedef struct {
    int32_t tstate_cframe;   /* offset of tstate->cframe (3.11, 3.12); -1: current_frame is in tstate */
    uint32_t current_frame;  /* offset of current_frame in the cframe, or in tstate */
    uint32_t f_code;         /* f_code (3.11, 3.12) or f_executable (3.13+) */
    uint32_t f_previous;
    uint32_t f_instr;        /* prev_instr (3.11, 3.12) or instr_ptr (3.13+): the instruction running */
    uint32_t f_owner;
    int32_t f_is_entry;      /* 3.11's is_entry; -1: each C-level entry pushes a shim frame instead */
    int32_t owner_shim;      /* 3.12: the owner value of that shim; -1: a shim has no code object (3.13+) */
    uintptr_t exec_mask;     /* 3.14+: f_executable is a tagged _PyStackRef; mask off the tag bits */
    uint32_t ob_type;
    uint32_t co_firstlineno, co_filename, co_qualname, co_linetable, co_adaptive;
    uint32_t str_state, str_length, ascii_size, compact_size; /* PyASCIIObject, PyCompactUnicodeObject */
    uint32_t bytes_size, bytes_sval;                          /* PyBytesObject: ob_size, ob_sval */
} layout_t;

/* CPython 3.11 and 3.12 (LP64 targets). Macros, so that the checks below are constant expressions. */
#define PY311_TSTATE_CFRAME 56
#define PY311_CFRAME_FRAME 8
#define PY311_F_CODE 32
#define PY311_F_PREVIOUS 48
#define PY311_F_INSTR 56
#define PY311_F_IS_ENTRY 68
#define PY311_F_OWNER 69
#define PY311_CO_FIRSTLINENO 72
#define PY311_CO_FILENAME 112
#define PY311_CO_QUALNAME 128
#define PY311_CO_LINETABLE 136
#define PY311_CO_ADAPTIVE 184
#define PY311_ASCII_SIZE 48
#define PY311_COMPACT_SIZE 72

#define PY312_TSTATE_CFRAME 56
#define PY312_CFRAME_FRAME 0
#define PY312_F_CODE 0
#define PY312_F_PREVIOUS 8
#define PY312_F_INSTR 56
#define PY312_F_OWNER 70
#define PY312_OWNER_SHIM 3 /* FRAME_OWNED_BY_CSTACK */
#define PY312_CO_FIRSTLINENO 68
#define PY312_CO_FILENAME 112
#define PY312_CO_QUALNAME 128
#define PY312_CO_LINETABLE 136
#define PY312_CO_ADAPTIVE 192
#define PY312_ASCII_SIZE 40
#define PY312_COMPACT_SIZE 56

/* the same in both, and in 3.13 and 3.14's default builds */
#define PY_OB_TYPE 8
#define PY_STR_LENGTH 16
#define PY_STR_STATE 32
#define PY_BYTES_SIZE 16
#define PY_BYTES_SVAL 32

static const layout_t layout_311 = {
    .tstate_cframe = PY311_TSTATE_CFRAME, .current_frame = PY311_CFRAME_FRAME,
    .f_code = PY311_F_CODE, .f_previous = PY311_F_PREVIOUS, .f_instr = PY311_F_INSTR,
    .f_owner = PY311_F_OWNER, .f_is_entry = PY311_F_IS_ENTRY, .owner_shim = -1,
    .exec_mask = ~(uintptr_t)0, .ob_type = PY_OB_TYPE,
    .co_firstlineno = PY311_CO_FIRSTLINENO, .co_filename = PY311_CO_FILENAME,
    .co_qualname = PY311_CO_QUALNAME, .co_linetable = PY311_CO_LINETABLE, .co_adaptive = PY311_CO_ADAPTIVE,
    .str_state = PY_STR_STATE, .str_length = PY_STR_LENGTH,
    .ascii_size = PY311_ASCII_SIZE, .compact_size = PY311_COMPACT_SIZE,
    .bytes_size = PY_BYTES_SIZE, .bytes_sval = PY_BYTES_SVAL,
};

static const layout_t layout_312 = {
    .tstate_cframe = PY312_TSTATE_CFRAME, .current_frame = PY312_CFRAME_FRAME,
    .f_code = PY312_F_CODE, .f_previous = PY312_F_PREVIOUS, .f_instr = PY312_F_INSTR,
    .f_owner = PY312_F_OWNER, .f_is_entry = -1, .owner_shim = PY312_OWNER_SHIM,
    .exec_mask = ~(uintptr_t)0, .ob_type = PY_OB_TYPE,
    .co_firstlineno = PY312_CO_FIRSTLINENO, .co_filename = PY312_CO_FILENAME,
    .co_qualname = PY312_CO_QUALNAME, .co_linetable = PY312_CO_LINETABLE, .co_adaptive = PY312_CO_ADAPTIVE,
    .str_state = PY_STR_STATE, .str_length = PY_STR_LENGTH,
    .ascii_size = PY312_ASCII_SIZE, .compact_size = PY312_COMPACT_SIZE,
    .bytes_size = PY_BYTES_SIZE, .bytes_sval = PY_BYTES_SVAL,
};

/* The start of _Py_DebugOffsets as CPython 3.13 publishes it (Include/internal/pycore_runtime.h). Only
 * the blocks up to the last one we read are mirrored; sizes in the first field of each block. */
typedef struct {
    char cookie[8];
    uint64_t version, free_threaded;
    struct { uint64_t size, finalizing, interpreters_head; } runtime_state;
    struct {
        uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins, ceval_gil;
        uint64_t gil_runtime_state, gil_runtime_state_enabled, gil_runtime_state_locked;
        uint64_t gil_runtime_state_holder;
    } interpreter_state;
    struct {
        uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id, datastack_chunk;
        uint64_t status;
    } thread_state;
    struct { uint64_t size, previous, executable, instr_ptr, localsplus, owner; } interpreter_frame;
    struct {
        uint64_t size, filename, name, qualname, linetable, firstlineno, argcount, localsplusnames;
        uint64_t localspluskinds, co_code_adaptive;
    } code_object;
    struct { uint64_t size, ob_type; } pyobject;
    struct { uint64_t size, tp_name, tp_repr, tp_flags; } type_object;
    struct { uint64_t size, ob_item, ob_size; } tuple_object, list_object;
    struct { uint64_t size, ma_keys, ma_values; } dict_object;
    struct { uint64_t size, ob_fval; } float_object;
    struct { uint64_t size, lv_tag, ob_digit; } long_object;
    struct { uint64_t size, ob_size, ob_sval; } bytes_object;
    struct { uint64_t size, state, length, asciiobject_size; } unicode_object;
} debug_offsets_313;

/* The same for CPython 3.14 (Include/internal/pycore_debug_offsets.h): fields added to the interpreter
 * state, frame and code blocks, and a set block before the dict block. */
typedef struct {
    char cookie[8];
    uint64_t version, free_threaded;
    struct { uint64_t size, finalizing, interpreters_head; } runtime_state;
    struct {
        uint64_t size, id, next, threads_head, threads_main, gc, imports_modules, sysdict, builtins;
        uint64_t ceval_gil, gil_runtime_state, gil_runtime_state_enabled, gil_runtime_state_locked;
        uint64_t gil_runtime_state_holder, code_object_generation, tlbc_generation;
    } interpreter_state;
    struct {
        uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id, datastack_chunk;
        uint64_t status;
    } thread_state;
    struct {
        uint64_t size, previous, executable, instr_ptr, localsplus, owner, stackpointer, tlbc_index;
    } interpreter_frame;
    struct {
        uint64_t size, filename, name, qualname, linetable, firstlineno, argcount, localsplusnames;
        uint64_t localspluskinds, co_code_adaptive, co_tlbc;
    } code_object;
    struct { uint64_t size, ob_type; } pyobject;
    struct { uint64_t size, tp_name, tp_repr, tp_flags; } type_object;
    struct { uint64_t size, ob_item, ob_size; } tuple_object, list_object;
    struct { uint64_t size, used, table, mask; } set_object;
    struct { uint64_t size, ma_keys, ma_values; } dict_object;
    struct { uint64_t size, ob_fval; } float_object;
    struct { uint64_t size, lv_tag, ob_digit; } long_object;
    struct { uint64_t size, ob_size, ob_sval; } bytes_object;
    struct { uint64_t size, state, length, asciiobject_size; } unicode_object;
} debug_offsets_314;

/* ---- the tables checked against the real headers, when this file is compiled with a Python.h ---- */
#if defined(__has_include)
#if __has_include(<Python.h>)
#include <Python.h>
#define Py_BUILD_CORE 1
#define LBT_SAME(table, value, what) _Static_assert((table) == (value), what)
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
#include <internal/pycore_frame.h>
#define LBT_LAYOUT_CHECKED (PY_VERSION_HEX >> 16)
#endif
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
LBT_SAME(PY311_TSTATE_CFRAME, offsetof(PyThreadState, cframe), "tstate->cframe");
LBT_SAME(PY311_CFRAME_FRAME, offsetof(_PyCFrame, current_frame), "cframe->current_frame");
LBT_SAME(PY311_F_CODE, offsetof(_PyInterpreterFrame, f_code), "f_code");
LBT_SAME(PY311_F_PREVIOUS, offsetof(_PyInterpreterFrame, previous), "previous");
LBT_SAME(PY311_F_INSTR, offsetof(_PyInterpreterFrame, prev_instr), "prev_instr");
LBT_SAME(PY311_F_IS_ENTRY, offsetof(_PyInterpreterFrame, is_entry), "is_entry");
LBT_SAME(PY311_F_OWNER, offsetof(_PyInterpreterFrame, owner), "owner");
LBT_SAME(PY311_CO_FIRSTLINENO, offsetof(PyCodeObject, co_firstlineno), "co_firstlineno");
LBT_SAME(PY311_CO_FILENAME, offsetof(PyCodeObject, co_filename), "co_filename");
LBT_SAME(PY311_CO_QUALNAME, offsetof(PyCodeObject, co_qualname), "co_qualname");
LBT_SAME(PY311_CO_LINETABLE, offsetof(PyCodeObject, co_linetable), "co_linetable");
LBT_SAME(PY311_CO_ADAPTIVE, offsetof(PyCodeObject, co_code_adaptive), "co_code_adaptive");
LBT_SAME(PY311_ASCII_SIZE, sizeof(PyASCIIObject), "PyASCIIObject");
LBT_SAME(PY311_COMPACT_SIZE, sizeof(PyCompactUnicodeObject), "PyCompactUnicodeObject");
#endif
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
LBT_SAME(PY312_TSTATE_CFRAME, offsetof(PyThreadState, cframe), "tstate->cframe");
LBT_SAME(PY312_CFRAME_FRAME, offsetof(_PyCFrame, current_frame), "cframe->current_frame");
LBT_SAME(PY312_F_CODE, offsetof(_PyInterpreterFrame, f_code), "f_code");
LBT_SAME(PY312_F_PREVIOUS, offsetof(_PyInterpreterFrame, previous), "previous");
LBT_SAME(PY312_F_INSTR, offsetof(_PyInterpreterFrame, prev_instr), "prev_instr");
LBT_SAME(PY312_F_OWNER, offsetof(_PyInterpreterFrame, owner), "owner");
LBT_SAME(PY312_OWNER_SHIM, FRAME_OWNED_BY_CSTACK, "FRAME_OWNED_BY_CSTACK");
LBT_SAME(PY312_CO_FIRSTLINENO, offsetof(PyCodeObject, co_firstlineno), "co_firstlineno");
LBT_SAME(PY312_CO_FILENAME, offsetof(PyCodeObject, co_filename), "co_filename");
LBT_SAME(PY312_CO_QUALNAME, offsetof(PyCodeObject, co_qualname), "co_qualname");
LBT_SAME(PY312_CO_LINETABLE, offsetof(PyCodeObject, co_linetable), "co_linetable");
LBT_SAME(PY312_CO_ADAPTIVE, offsetof(PyCodeObject, co_code_adaptive), "co_code_adaptive");
LBT_SAME(PY312_ASCII_SIZE, sizeof(PyASCIIObject), "PyASCIIObject");
LBT_SAME(PY312_COMPACT_SIZE, sizeof(PyCompactUnicodeObject), "PyCompactUnicodeObject");
#endif
#if PY_VERSION_HEX >= 0x030B0000 && !defined(Py_GIL_DISABLED)
LBT_SAME(PY_OB_TYPE, offsetof(PyObject, ob_type), "ob_type");
LBT_SAME(PY_STR_LENGTH, offsetof(PyASCIIObject, length), "PyASCIIObject.length");
LBT_SAME(PY_STR_STATE, offsetof(PyASCIIObject, state), "PyASCIIObject.state");
LBT_SAME(PY_BYTES_SIZE, offsetof(PyVarObject, ob_size), "ob_size");
LBT_SAME(PY_BYTES_SVAL, offsetof(PyBytesObject, ob_sval), "ob_sval");
#endif
#if PY_VERSION_HEX >= 0x030D0000 && !defined(Py_GIL_DISABLED)
#include <internal/pycore_runtime.h>
#define LBT_DEBUG_SAME(mine, field) \
    _Static_assert(offsetof(mine, field) == offsetof(_Py_DebugOffsets, field), #field)
#define LBT_LAYOUT_CHECKED (PY_VERSION_HEX >> 16)
#if PY_VERSION_HEX < 0x030E0000
#define LBT_MIRROR debug_offsets_313
#else
#define LBT_MIRROR debug_offsets_314
#endif
LBT_DEBUG_SAME(LBT_MIRROR, version);
LBT_DEBUG_SAME(LBT_MIRROR, free_threaded);
LBT_DEBUG_SAME(LBT_MIRROR, thread_state.current_frame);
LBT_DEBUG_SAME(LBT_MIRROR, interpreter_frame.previous);
LBT_DEBUG_SAME(LBT_MIRROR, interpreter_frame.executable);
LBT_DEBUG_SAME(LBT_MIRROR, interpreter_frame.instr_ptr);
LBT_DEBUG_SAME(LBT_MIRROR, interpreter_frame.owner);
LBT_DEBUG_SAME(LBT_MIRROR, code_object.filename);
LBT_DEBUG_SAME(LBT_MIRROR, code_object.qualname);
LBT_DEBUG_SAME(LBT_MIRROR, code_object.linetable);
LBT_DEBUG_SAME(LBT_MIRROR, code_object.firstlineno);
LBT_DEBUG_SAME(LBT_MIRROR, code_object.co_code_adaptive);
LBT_DEBUG_SAME(LBT_MIRROR, pyobject.ob_type);
LBT_DEBUG_SAME(LBT_MIRROR, bytes_object.ob_size);
LBT_DEBUG_SAME(LBT_MIRROR, bytes_object.ob_sval);
LBT_DEBUG_SAME(LBT_MIRROR, unicode_object.state);
LBT_DEBUG_SAME(LBT_MIRROR, unicode_object.length);
LBT_DEBUG_SAME(LBT_MIRROR, unicode_object.asciiobject_size);
_Static_assert(sizeof(LBT_MIRROR) <= sizeof(_Py_DebugOffsets), "the mirror is a prefix");
_Static_assert(sizeof(PyCompactUnicodeObject) == sizeof(PyASCIIObject) + 16, "PyCompactUnicodeObject");
#endif
#endif
#endif
#if defined(LBT_REQUIRE_LAYOUT_CHECK) && !defined(LBT_LAYOUT_CHECKED)
#error "no layout check ran: this Python.h is not one whose layout the tracker knows"
#endif

static void *(*get_tstate)(void);
static int (*is_initialized)(void);
static int (*is_finalizing)(void);
static uint32_t py_version;
static int present;
static uint32_t unreadable; /* LBT_FLAG_PYTHON_UNREADABLE, with LBT_FLAG_FREE_THREADED when that is why */
static layout_t lay;         /* the layout in use, when frames are readable */
static const void *code_type; /* &PyCode_Type: f_executable may hold other objects (3.13+) */
static uintptr_t eval_start, eval_end;
static uintptr_t interp_lo, interp_hi;

#define FIELD(base, off, type) (*(type const *)((const char *)(base) + (off)))

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

/* 3.13 and later: the layout from the _Py_DebugOffsets at the start of _PyRuntime. 0 when usable. */
#define OFFSETS_FROM(d) \
    do { \
        if ((d)->free_threaded || (d)->pyobject.ob_type != PY_OB_TYPE) return LBT_FLAG_FREE_THREADED; \
        /* every offset we follow must lie inside the struct it is part of */ \
        if ((d)->thread_state.current_frame >= (d)->thread_state.size) return 1; \
        if ((d)->interpreter_frame.previous >= (d)->interpreter_frame.size) return 1; \
        if ((d)->interpreter_frame.executable >= (d)->interpreter_frame.size) return 1; \
        if ((d)->interpreter_frame.instr_ptr >= (d)->interpreter_frame.size) return 1; \
        if ((d)->interpreter_frame.owner >= (d)->interpreter_frame.size) return 1; \
        if ((d)->code_object.filename >= (d)->code_object.size) return 1; \
        if ((d)->code_object.qualname >= (d)->code_object.size) return 1; \
        if ((d)->code_object.linetable >= (d)->code_object.size) return 1; \
        if ((d)->code_object.firstlineno >= (d)->code_object.size) return 1; \
        if ((d)->code_object.co_code_adaptive > (d)->code_object.size) return 1; \
        if ((d)->unicode_object.state >= (d)->unicode_object.asciiobject_size) return 1; \
        if ((d)->unicode_object.length >= (d)->unicode_object.asciiobject_size) return 1; \
        if ((d)->bytes_object.ob_sval > (d)->bytes_object.size) return 1; \
        if ((d)->unicode_object.asciiobject_size > 256 || (d)->code_object.size > 4096) return 1; \
        lay.tstate_cframe = -1; \
        lay.current_frame = (uint32_t)(d)->thread_state.current_frame; \
        lay.f_code = (uint32_t)(d)->interpreter_frame.executable; \
        lay.f_previous = (uint32_t)(d)->interpreter_frame.previous; \
        lay.f_instr = (uint32_t)(d)->interpreter_frame.instr_ptr; \
        lay.f_owner = (uint32_t)(d)->interpreter_frame.owner; \
        lay.f_is_entry = -1; \
        lay.owner_shim = -1; \
        lay.ob_type = (uint32_t)(d)->pyobject.ob_type; \
        lay.co_firstlineno = (uint32_t)(d)->code_object.firstlineno; \
        lay.co_filename = (uint32_t)(d)->code_object.filename; \
        lay.co_qualname = (uint32_t)(d)->code_object.qualname; \
        lay.co_linetable = (uint32_t)(d)->code_object.linetable; \
        lay.co_adaptive = (uint32_t)(d)->code_object.co_code_adaptive; \
        lay.str_state = (uint32_t)(d)->unicode_object.state; \
        lay.str_length = (uint32_t)(d)->unicode_object.length; \
        lay.ascii_size = (uint32_t)(d)->unicode_object.asciiobject_size; \
        lay.compact_size = lay.ascii_size + 16; /* Py_ssize_t utf8_length; char *utf8 */ \
        lay.bytes_size = (uint32_t)(d)->bytes_object.ob_size; \
        lay.bytes_sval = (uint32_t)(d)->bytes_object.ob_sval; \
    } while (0)

static uint32_t layout_from_debug_offsets(const void *runtime) {
    const debug_offsets_313 *d13 = runtime;
    if (!runtime || memcmp(d13->cookie, "xdebugpy", 8) != 0) return 1;
    if ((d13->version >> 16) != (py_version >> 16)) return 1;
    if ((py_version >> 16) == 0x030D) {
        OFFSETS_FROM(d13);
        lay.exec_mask = ~(uintptr_t)0;
    } else {
        /* 3.14 and later: f_executable is a _PyStackRef whose low bits are tags (Py_TAG_BITS); objects
         * are at least 8-aligned, so masking three bits covers every tagging scheme used so far. */
        const debug_offsets_314 *d14 = runtime;
        OFFSETS_FROM(d14);
        lay.exec_mask = ~(uintptr_t)7;
    }
    return 0;
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
    uint32_t minor = py_version >> 16;
    if (minor == 0x030B) lay = layout_311;
    else if (minor == 0x030C) lay = layout_312;
    else unreadable = minor > 0x030C ? layout_from_debug_offsets(sym(RTLD_DEFAULT, "_PyRuntime")) : 1;
    code_type = sym(RTLD_DEFAULT, "PyCode_Type");
    *(void **)&get_tstate = sym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
    *(void **)&is_initialized = sym(RTLD_DEFAULT, "Py_IsInitialized");
    *(void **)&is_finalizing = sym(RTLD_DEFAULT, "Py_IsFinalizing"); /* public from 3.13 */
    if (!is_finalizing) *(void **)&is_finalizing = sym(RTLD_DEFAULT, "_Py_IsFinalizing");
    if (!get_tstate || !is_initialized || !is_finalizing || !code_type) unreadable |= 1;
    if (unreadable) {
        unreadable = LBT_FLAG_PYTHON_UNREADABLE | (unreadable & LBT_FLAG_FREE_THREADED);
        get_tstate = NULL;
        if (_lbt_opt.debug) _lbt_warn("Python %x: frames unreadable, native stacks only", py_version);
        return 1;
    }
    /* The size of the eval loop's symbol, to place Python frames where it runs them in native stacks.
     * The tail-calling interpreter (3.14 built with clang) keeps this function on the stack below its
     * opcode handlers, since it holds the entry frame; the handlers are dropped when stacks are merged. */
    Dl_info info;
    const ElfW(Sym) *symbol = NULL;
    if (dladdr1(eval, &info, (void **)&symbol, RTLD_DL_SYMENT) && symbol && symbol->st_size) {
        eval_start = (uintptr_t)eval;
        eval_end = eval_start + symbol->st_size;
    }
    return 1;
}

int _lbt_python_present(void) { return present; }
uint32_t _lbt_python_unreadable(void) { return present ? unreadable : 0; }
uint32_t _lbt_python_version(void) { return py_version; }
int _lbt_in_eval(uintptr_t ip) { return ip - eval_start < eval_end - eval_start; }
int _lbt_in_interpreter(uintptr_t ip) { return ip - interp_lo < interp_hi - interp_lo; }
int _lbt_python_finalizing(void) { return is_finalizing && is_finalizing(); }

uint32_t _lbt_python_walk(lbt_pyframe_t *out, uint32_t max, uint32_t *groups) {
    *groups = 0;
    /* Before Py_Initialize the thread-state key is not set up; during finalisation other threads'
     * states are being freed. Either way: native stack only. */
    if (!get_tstate || !is_initialized() || is_finalizing()) return 0;
    const char *tstate = get_tstate();
    if (!tstate) return 0; /* a thread the interpreter does not know */
    const char *holder = tstate;
    if (lay.tstate_cframe >= 0) {
        holder = FIELD(tstate, lay.tstate_cframe, const char *);
        if (!holder) return 0;
    }
    uint32_t n = 0, g = 0, seen = 0;
    /* shims add no output: `seen` bounds the walk even so */
    for (const char *f = FIELD(holder, lay.current_frame, const char *), *next; f && n < max; f = next) {
        if (++seen > 2 * max + 64) break;
        next = FIELD(f, lay.f_previous, const char *);
        const char *code = (const char *)(FIELD(f, lay.f_code, uintptr_t) & lay.exec_mask);
        /* 3.12+: each C-level call of the eval loop pushes a shim frame first; it ends a group, as
         * 3.11's is_entry does on the group's first frame. 3.13+: a shim runs no code object. */
        int shim = !code || (lay.owner_shim >= 0 && FIELD(f, lay.f_owner, char) == lay.owner_shim) ||
                   FIELD(code, lay.ob_type, const void *) != code_type;
        if (shim) {
            if (n && !out[n - 1].entry) {
                out[n - 1].entry = 1;
                g++;
            }
            continue;
        }
        const uint16_t *instr = FIELD(f, lay.f_instr, const uint16_t *);
        intptr_t lasti = instr - (const uint16_t *)(code + lay.co_adaptive);
        if (lasti < 0) lasti = 0; /* a frame not started yet points just before its first instruction */
        out[n].code = code;
        out[n].lasti = (uint32_t)lasti;
        out[n].entry = lay.f_is_entry >= 0 && FIELD(f, lay.f_is_entry, uint8_t) != 0;
        g += out[n].entry;
        n++;
    }
    *groups = g;
    return n;
}

/* A fingerprint that changes when a new code object takes the address of a dead one. */
int _lbt_python_code_info(const void *code, uint64_t *fingerprint) {
    uint64_t h = (uint64_t)FIELD(code, lay.co_filename, uintptr_t) * 0x9E3779B97F4A7C15ull;
    h ^= (uint64_t)FIELD(code, lay.co_qualname, uintptr_t) +
         ((uint64_t)FIELD(code, lay.co_firstlineno, uint32_t) << 40);
    h ^= (uint64_t)FIELD(code, lay.co_linetable, uintptr_t) * 0xC2B2AE3D27D4EB4Full;
    *fingerprint = h;
    return 0;
}

/* UTF-8 of a compact str, written without allocating; at most `room` bytes (else cut). */
static uint8_t *put_str(uint8_t *p, const void *obj, size_t room) {
    /* state: interned:2 kind:3 compact:1 ascii:1 ... in every version read here */
    uint32_t state = obj ? FIELD(obj, lay.str_state, uint32_t) : 0;
    if (!((state >> 5) & 1)) return _lbt_put_bytes(p, "?", 1);
    unsigned kind = (state >> 2) & 7, ascii = (state >> 6) & 1;
    size_t n = (size_t)FIELD(obj, lay.str_length, intptr_t);
    if (ascii) {
        if (n > room) n = room;
        return _lbt_put_bytes(p, (const char *)obj + lay.ascii_size, n);
    }
    const uint8_t *data = (const uint8_t *)obj + lay.compact_size;
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
    int first = FIELD(code, lay.co_firstlineno, int);
    p = _lbt_put_u(p, (uint64_t)(first < 0 ? 0 : first));
    p = put_str(p, FIELD(code, lay.co_filename, const void *), MAX_NAME);
    return put_str(p, FIELD(code, lay.co_qualname, const void *), MAX_NAME);
}

/* CPython's location table (Objects/locations.md, the same format 3.11 to 3.14): varints of 6-bit groups, bit 6 = more follows. */
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
    int firstlineno = FIELD(code, lay.co_firstlineno, int);
    int64_t first = firstlineno < 0 ? 0 : firstlineno, line = first;
    const char *lt = FIELD(code, lay.co_linetable, const char *);
    intptr_t size = lt ? FIELD(lt, lay.bytes_size, intptr_t) : 0;
    if (size <= 0) return (uint32_t)first;
    const uint8_t *p = (const uint8_t *)lt + lay.bytes_sval, *end = p + size;
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
