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

/* A node of the frame trie: the path from a root to it is the outermost frames of some stack written
 * already (native return addresses from the native root, Python frames as interned from the Python
 * root). `owner` is the latest stack written through the node: a new stack that shares this path
 * names `owner` as its parent for that part and sends only the frames below it. */
typedef struct {
    uint64_t word;
    uint32_t parent; /* the node of the next outer frame, or a root */
    uint32_t node;   /* 0: empty slot */
    uint32_t owner;
} node_slot_t;

#define NATIVE_ROOT 1u
#define PYTHON_ROOT 2u

static stack_slot_t *stacks;
static size_t stacks_cap, stacks_count;
static uint64_t *words;
static size_t words_cap, words_used;
static code_slot_t *codes;
static size_t codes_cap, codes_count;
static node_slot_t *nodes;
static size_t nodes_cap, nodes_count;
static uint32_t nodes_grown; /* how many times the node table moved */
static uint32_t next_stack_id, next_code_id, next_node;

#define PY_TAG (1ull << 63)

int _lbt_tables_init(void) {
    stacks_cap = 1 << 16;
    stacks = _lbt_sys_mmap(stacks_cap * sizeof *stacks);
    words_cap = 1 << 17;
    words = _lbt_sys_mmap(words_cap * sizeof *words);
    codes_cap = 1 << 12;
    codes = _lbt_sys_mmap(codes_cap * sizeof *codes);
    nodes_cap = 1 << 16;
    nodes = _lbt_sys_mmap(nodes_cap * sizeof *nodes);
    next_stack_id = next_code_id = 1; /* 0 means "no stack" / "unknown" */
    next_node = PYTHON_ROOT + 1;
    return stacks && words && codes && nodes ? 0 : -1;
}

void _lbt_tables_reset(void) {
    memset(stacks, 0, stacks_cap * sizeof *stacks);
    memset(codes, 0, codes_cap * sizeof *codes);
    memset(nodes, 0, nodes_cap * sizeof *nodes);
    stacks_count = codes_count = words_used = nodes_count = 0;
    next_stack_id = next_code_id = 1;
    next_node = PYTHON_ROOT + 1;
}

static inline uint64_t mix(uint64_t h, uint64_t w) {
    h ^= w;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

/* Grow at half load, while there is memory; a failed growth keeps the table (at worst stacks go
 * unnamed as id 0, or share fewer frames), it never fails the allocation being recorded. */
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

static inline size_t node_hash(uint32_t parent, uint64_t word, size_t cap) {
    return mix(mix(0x7A11E5u, parent), word) & (cap - 1);
}

static int grow_nodes(void) {
    size_t ncap = nodes_cap * 2;
    node_slot_t *n = _lbt_sys_mmap(ncap * sizeof *n);
    if (!n) return -1;
    for (size_t i = 0; i < nodes_cap; i++) {
        if (!nodes[i].node) continue;
        size_t j = node_hash(nodes[i].parent, nodes[i].word, ncap);
        while (n[j].node) j = (j + 1) & (ncap - 1);
        n[j] = nodes[i];
    }
    _lbt_sys_munmap(nodes, nodes_cap * sizeof *nodes);
    nodes = n;
    nodes_cap = ncap;
    nodes_grown++;
    return 0;
}

/* The slot of (parent, word): the node, or the empty slot where it would go. */
static node_slot_t *node_find(uint32_t parent, uint64_t word) {
    size_t j = node_hash(parent, word, nodes_cap);
    while (nodes[j].node && (nodes[j].parent != parent || nodes[j].word != word)) j = (j + 1) & (nodes_cap - 1);
    return &nodes[j];
}

typedef struct {
    uint32_t root;
    uint32_t shared;    /* outermost frames found in the trie */
    uint32_t owner;     /* a stack whose outermost `shared` frames these are (0 when shared is 0) */
    uint32_t node;      /* the innermost node found */
    uint32_t grown;     /* nodes_grown when matched: `path` holds slot addresses until the table grows */
    node_slot_t **path; /* the slots of the shared frames, outermost first */
} trie_match_t;

static node_slot_t *native_path[LBT_MAX_NATIVE], *python_path[LBT_MAX_PYTHON]; /* under the lock */

/* Follows `w` (innermost first, n words) from the outermost frame down the trie, as far as it goes. */
static trie_match_t trie_match(uint32_t root, const uint64_t *w, uint32_t n, node_slot_t **path) {
    trie_match_t m = {root, 0, 0, root, nodes_grown, path};
    while (m.shared < n) {
        node_slot_t *slot = node_find(m.node, w[n - 1 - m.shared]);
        if (!slot->node) break;
        path[m.shared++] = slot;
        m.node = slot->node;
        m.owner = slot->owner;
    }
    return m;
}

/* Makes stack `id` the owner of every node on its path: the shared ones, then new nodes for the frames
 * below (stops early if the table is full). The latest stack through a node is the nearest parent to
 * name: its distance back is small, and small numbers repeat. */
static void trie_record(trie_match_t m, const uint64_t *w, uint32_t n, uint32_t id) {
    if (m.grown == nodes_grown) {
        for (uint32_t k = 0; k < m.shared; k++) m.path[k]->owner = id;
    } else { /* the table grew since the match: the slots moved, find them again */
        uint32_t node = m.root;
        for (uint32_t k = 0; k < m.shared; k++) {
            node_slot_t *slot = node_find(node, w[n - 1 - k]);
            slot->owner = id;
            node = slot->node;
        }
    }
    uint32_t node = m.node;
    for (uint32_t k = m.shared; k < n; k++) {
        if (nodes_count * 2 >= nodes_cap && grow_nodes() != 0) return; /* full: later stacks share less */
        node_slot_t *slot = node_find(node, w[n - 1 - k]);
        slot->word = w[n - 1 - k];
        slot->parent = node;
        slot->node = next_node++;
        slot->owner = id;
        nodes_count++;
        node = slot->node;
    }
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
    uint8_t *p = _lbt_reserve(LBT_CODE_MAX + 16);
    if (!p) return 0;
    uint32_t id = next_code_id++; /* CODE records are numbered in the order they are written */
    p = _lbt_put_tag(p, LBT_REC_CODE);
    p = _lbt_python_put_code(p, code);
    _lbt_commit(p);
    if (!codes[j].id) codes_count++;
    codes[j].code = (uintptr_t)code;
    codes[j].fingerprint = fp;
    codes[j].id = id;
    return id;
}

/* One part of a STACK record: the parent (as a distance back from this stack's id, 0: none), the
 * outermost frames shared with it, the new frames. */
static uint8_t *put_part_head(uint8_t *p, uint32_t id, trie_match_t m, uint32_t n) {
    p = _lbt_put_u(p, m.shared ? id - m.owner : 0);
    p = _lbt_put_u(p, m.shared);
    return _lbt_put_u(p, n - m.shared);
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
    /* A new stack: found in the tries as far as its outer frames go (native return addresses; Python
     * frames as interned, by code id and instruction). */
    uint32_t nnative = st->nnative, npy = n - nnative;
    const uint64_t *pykey = key + nnative;
    trie_match_t mn = trie_match(NATIVE_ROOT, key, nnative, native_path);
    trie_match_t mp = trie_match(PYTHON_ROOT, pykey, npy, python_path);
    uint8_t *p = _lbt_reserve(48 + (size_t)n * 12);
    if (!p) return 0;
    uint32_t id = next_stack_id++; /* STACK records are numbered in the order they are written */
    /* STACK: for the native part and then the Python part: a parent stack that has the same outermost
     * frames, how many of them, and the new innermost frames (native: 8-byte return addresses; Python:
     * code id, line << 1 | entry, the line read from the code's location table now, while the frame
     * runs, so that the capture needs no line tables). */
    p = _lbt_put_tag(p, LBT_REC_STACK);
    p = put_part_head(p, id, mn, nnative);
    for (uint32_t i = 0; i < nnative - mn.shared; i++) p = _lbt_put_u64(p, key[i]); /* found again by xz */
    p = put_part_head(p, id, mp, npy);
    for (uint32_t i = 0; i < npy - mp.shared; i++) {
        uint32_t line = _lbt_python_line(st->py[i].code, st->py[i].lasti);
        p = _lbt_put_u(p, (pykey[i] >> 32) & 0x7FFFFFFFu);
        p = _lbt_put_u(p, ((uint64_t)line << 1) | (pykey[i] & 1));
    }
    _lbt_commit(p);
    trie_record(mn, key, nnative, id);
    trie_record(mp, pykey, npy, id);
    memcpy(words + words_used, key, n * sizeof key[0]);
    stacks[j].hash = h;
    stacks[j].offset = words_used;
    stacks[j].nwords = n;
    stacks[j].id = id;
    words_used += n;
    stacks_count++;
    return id;
}
