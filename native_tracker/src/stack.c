/* Captures stacks (native return addresses + Python frames) and interns them: each distinct stack is
 * written once as a STACK record and then referenced by its id; each code object once as a CODE record. */
#include "lbt.h" /* first: it defines _GNU_SOURCE */

#include <string.h>
#include <sys/mman.h>
#include <unwind.h>

/* ---- capture (no lock held: unwinding may take the loader's lock) ---- */

typedef struct {
    uint64_t *out;
    uint32_t n, max;
    uint32_t evals, stop_after;
    int skipping;
} unwind_t;

static _Unwind_Reason_Code unwind_step(struct _Unwind_Context *ctx, void *arg) {
    unwind_t *u = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (!ip) return _URC_END_OF_STACK;
    if (u->skipping) {
        if (_lbt_in_self(ip)) return _URC_NO_REASON; /* our own frames and the hook */
        u->skipping = 0;
    }
    u->out[u->n++] = ip;
    /* Above the outermost eval loop there is only the interpreter's start-up (main, Py_RunMain, ...): the
     * same for every allocation, so not worth unwinding. */
    if (u->stop_after && _lbt_in_eval(ip) && ++u->evals >= u->stop_after) return _URC_END_OF_STACK;
    return u->n >= u->max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

void _lbt_capture_stack(lbt_stack_t *st) {
    uint32_t groups = 0;
    st->npy = _lbt_opt.python_stacks ? _lbt_python_walk(st->py, (uint32_t)_lbt_opt.python_depth, &groups) : 0;
    st->nnative = 0;
    if (_lbt_opt.native_depth > 0) {
        int n = _lbt_opt.fast_unwind ? _lbt_fast_unwind(st->native, (uint32_t)_lbt_opt.native_depth, groups) : -1;
        if (n >= 0) {
            st->nnative = (uint32_t)n;
            return;
        }
        unwind_t u = {st->native, 0, (uint32_t)_lbt_opt.native_depth, 0, groups, 1};
        _Unwind_Backtrace(unwind_step, &u);
        st->nnative = u.n;
    }
}

/* The first unwind loads libgcc_s's tables and may allocate: done once at start-up, inside the guard. */
void _lbt_stack_init(void) {
    _lbt_unwind_init();
    lbt_stack_t *st = _lbt_sys_mmap(sizeof *st);
    if (!st) return;
    uint64_t saved = (uint64_t)_lbt_opt.python_stacks;
    _lbt_opt.python_stacks = 0;
    _lbt_capture_stack(st);
    _lbt_opt.python_stacks = (long)saved;
    _lbt_sys_munmap(st, sizeof *st);
}

/* ---- tables (under the writer lock) ---- */

typedef struct {
    uint64_t hash;
    uint64_t offset; /* into `words` */
    uint32_t id, nwords;
} stack_slot_t;

typedef struct {
    uintptr_t code;
    uint64_t fingerprint;
    uint32_t id;
} code_slot_t;

static stack_slot_t *stacks;
static size_t stacks_cap, stacks_count;
static uint64_t *words;
static size_t words_cap, words_used;
static code_slot_t *codes;
static size_t codes_cap, codes_count;
static uint32_t next_stack_id, next_code_id;
static uint32_t last_id, last_nwords, last_nnative; /* the last stack written: the base of the next */
static uint64_t last_offset;

#define PY_TAG (1ull << 63)

int _lbt_tables_init(void) {
    stacks_cap = 1 << 16;
    stacks = _lbt_sys_mmap(stacks_cap * sizeof *stacks);
    words_cap = 1 << 17;
    words = _lbt_sys_mmap(words_cap * sizeof *words);
    codes_cap = 1 << 12;
    codes = _lbt_sys_mmap(codes_cap * sizeof *codes);
    next_stack_id = next_code_id = 1; /* 0 means "no stack" / "unknown" */
    return stacks && words && codes ? 0 : -1;
}

void _lbt_tables_reset(void) {
    memset(stacks, 0, stacks_cap * sizeof *stacks);
    memset(codes, 0, codes_cap * sizeof *codes);
    stacks_count = codes_count = words_used = 0;
    next_stack_id = next_code_id = 1;
    last_id = 0;
}

static inline uint64_t mix(uint64_t h, uint64_t w) {
    h ^= w;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

/* Grow at half load, while there is memory; a failed growth keeps the table (at worst stacks go
 * unnamed as id 0), it never fails the allocation being recorded. */
static int grow_stacks(void) {
    size_t ncap = stacks_cap * 2;
    stack_slot_t *n = _lbt_sys_mmap(ncap * sizeof *n);
    if (!n) return -1;
    for (size_t i = 0; i < stacks_cap; i++) {
        if (!stacks[i].id) continue;
        size_t j = stacks[i].hash & (ncap - 1);
        while (n[j].id) j = (j + 1) & (ncap - 1);
        n[j] = stacks[i];
    }
    _lbt_sys_munmap(stacks, stacks_cap * sizeof *stacks);
    stacks = n;
    stacks_cap = ncap;
    return 0;
}

static int grow_codes(void) {
    size_t ncap = codes_cap * 2;
    code_slot_t *n = _lbt_sys_mmap(ncap * sizeof *n);
    if (!n) return -1;
    for (size_t i = 0; i < codes_cap; i++) {
        if (!codes[i].id) continue;
        size_t j = (codes[i].code >> 4) * 0x9E3779B97F4A7C15ull & (ncap - 1);
        while (n[j].id) j = (j + 1) & (ncap - 1);
        n[j] = codes[i];
    }
    _lbt_sys_munmap(codes, codes_cap * sizeof *codes);
    codes = n;
    codes_cap = ncap;
    return 0;
}

static uint32_t intern_code(const void *code) {
    uint64_t fp;
    _lbt_python_code_info(code, &fp);
    if (codes_count * 2 >= codes_cap && grow_codes() != 0 && codes_count + 1 >= codes_cap) return 0;
    size_t j = ((uintptr_t)code >> 4) * 0x9E3779B97F4A7C15ull & (codes_cap - 1);
    while (codes[j].id) {
        if (codes[j].code == (uintptr_t)code) {
            if (codes[j].fingerprint == fp) return codes[j].id;
            break; /* a new code object where a dead one was: give it a new id in the same slot */
        }
        j = (j + 1) & (codes_cap - 1);
    }
    size_t need = _lbt_python_code_size(code) + 24;
    size_t room = _lbt_writer_capacity() / 2;
    uint8_t *p = _lbt_reserve(need < room ? need : room);
    if (!p) return 0;
    uint32_t id = next_code_id++;
    p = _lbt_put_tag(p, LBT_REC_CODE);
    p = _lbt_put_u(p, id);
    p = _lbt_python_put_code(p, code, (need < room ? need : room) - 24);
    _lbt_commit(p);
    if (!codes[j].id) codes_count++;
    codes[j].code = (uintptr_t)code;
    codes[j].fingerprint = fp;
    codes[j].id = id;
    return id;
}

uint32_t _lbt_intern_stack_locked(const lbt_stack_t *st) {
    uint64_t key[LBT_MAX_NATIVE + LBT_MAX_PYTHON];
    uint32_t n = 0;
    for (uint32_t i = 0; i < st->nnative; i++) key[n++] = st->native[i];
    for (uint32_t i = 0; i < st->npy; i++) {
        uint32_t code = intern_code(st->py[i].code);
        key[n++] = PY_TAG | ((uint64_t)code << 32) | ((uint64_t)st->py[i].lasti << 1) | st->py[i].entry;
    }
    if (n == 0) return 0;
    uint64_t h = mix(0x51ED27A3u, n);
    for (uint32_t i = 0; i < n; i++) h = mix(h, key[i]);
    if (stacks_count * 2 >= stacks_cap && grow_stacks() != 0 && stacks_count + 1 >= stacks_cap) return 0;
    size_t j = h & (stacks_cap - 1);
    while (stacks[j].id) {
        if (stacks[j].hash == h && stacks[j].nwords == n &&
            memcmp(words + stacks[j].offset, key, n * sizeof key[0]) == 0)
            return stacks[j].id;
        j = (j + 1) & (stacks_cap - 1);
    }
    if (words_used + n > words_cap) {
        size_t ncap = words_cap * 2;
        void *moved = mremap(words, words_cap * sizeof *words, ncap * sizeof *words, MREMAP_MAYMOVE);
        if (moved == MAP_FAILED) return 0;
        words = moved;
        words_cap = ncap;
    }
    /* STACK: id, then the stack as a change of the previously written one (consecutive new stacks share
     * their outer frames: a cheap stand-in for a trie). For the native part and then the Python part:
     * how many outermost frames are shared with the base, how many new innermost frames follow, and
     * those frames (native: zigzag deltas from the previous address; Python: code id, lasti << 1 | entry). */
    uint32_t npy = n - st->nnative;
    uint32_t base_native = 0, base_py = 0;
    const uint64_t *base_words = NULL;
    if (last_id) {
        base_words = words + last_offset;
        base_native = last_nnative;
        base_py = last_nwords - last_nnative;
    }
    uint32_t shared_native = 0, shared_py = 0;
    while (shared_native < st->nnative && shared_native < base_native &&
           key[st->nnative - 1 - shared_native] == base_words[base_native - 1 - shared_native])
        shared_native++;
    while (shared_py < npy && shared_py < base_py &&
           key[n - 1 - shared_py] == base_words[base_native + base_py - 1 - shared_py])
        shared_py++;
    uint8_t *p = _lbt_reserve(48 + (size_t)n * 12);
    if (!p) return 0;
    uint32_t id = next_stack_id++;
    p = _lbt_put_tag(p, LBT_REC_STACK);
    p = _lbt_put_u(p, id);
    p = _lbt_put_u(p, last_id);
    p = _lbt_put_u(p, shared_native);
    p = _lbt_put_u(p, st->nnative - shared_native);
    uint64_t prev = 0;
    for (uint32_t i = 0; i < st->nnative - shared_native; i++) {
        p = _lbt_put_s(p, (int64_t)(key[i] - prev));
        prev = key[i];
    }
    p = _lbt_put_u(p, shared_py);
    p = _lbt_put_u(p, npy - shared_py);
    for (uint32_t i = st->nnative; i < n - shared_py; i++) {
        p = _lbt_put_u(p, (key[i] >> 32) & 0x7FFFFFFFu);
        p = _lbt_put_u(p, key[i] & 0xFFFFFFFFu);
    }
    _lbt_commit(p);
    last_id = id;
    last_offset = words_used;
    last_nwords = n;
    last_nnative = st->nnative;
    memcpy(words + words_used, key, n * sizeof key[0]);
    stacks[j].hash = h;
    stacks[j].offset = words_used;
    stacks[j].nwords = n;
    stacks[j].id = id;
    words_used += n;
    stacks_count++;
    return id;
}
