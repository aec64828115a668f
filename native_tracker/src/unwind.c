/* Fast native unwinding for x86-64: the DWARF CFI rule of each return address is worked out once (from
 * the FDE that libgcc's _Unwind_Find_FDE finds) and cached; after that a frame costs a hash lookup and
 * two loads instead of a run of libgcc's CFI interpreter. Only the common shapes are cached (CFA = RSP
 * or RBP + offset, RA and RBP at fixed offsets from the CFA); anything else (signal frames, DWARF
 * expressions) makes the caller fall back to _Unwind_Backtrace for that stack. */
#include "lbt.h" /* first: it defines _GNU_SOURCE */

#include <string.h>
#include <unwind.h>

#if defined(__x86_64__)

struct dwarf_eh_bases {
    void *tbase, *dbase, *func;
};
extern const void *_Unwind_Find_FDE(void *pc, struct dwarf_eh_bases *bases);

enum { REG_RBP = 6, REG_RSP = 7, REG_RA = 16 };

/* A cached rule: CFA = (cfa_rbp ? RBP : RSP) + cfa_off; RA at CFA + ra_off; the caller's RBP at
 * CFA + rbp_off when rbp_saved, else unchanged. `end` marks the outermost frame (RA undefined). */
typedef struct {
    int32_t cfa_off;
    int16_t ra_off, rbp_off;
    uint8_t cfa_rbp, rbp_saved, end, valid;
} rule_t;

typedef struct {
    uintptr_t key; /* ip; 0 = empty; top bit = being written */
    rule_t rule;
} slot_t;

#define CACHE_BITS 16
#define CACHE_SIZE (1u << CACHE_BITS)
#define BUSY ((uintptr_t)1 << 63)
static slot_t *cache;
static unsigned cache_used;

void _lbt_unwind_init(void) {
    if (!cache) cache = _lbt_sys_mmap(CACHE_SIZE * sizeof *cache);
}

static uint64_t uleb(const uint8_t **p) {
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        b = *(*p)++;
        if (shift < 64) v |= (uint64_t)(b & 0x7F) << shift;
        shift += 7;
    } while (b & 0x80);
    return v;
}

static int64_t sleb(const uint8_t **p) {
    int64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        b = *(*p)++;
        if (shift < 64) v |= (int64_t)(b & 0x7F) << shift;
        shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40)) v |= -((int64_t)1 << shift);
    return v;
}

static int encoded_size(uint8_t enc, const uint8_t **p) {
    if (enc == 0xFF) return 0; /* DW_EH_PE_omit */
    switch (enc & 0x0F) {
    case 0x00: *p += 8; return 0;
    case 0x02: case 0x0A: *p += 2; return 0;
    case 0x03: case 0x0B: *p += 4; return 0;
    case 0x04: case 0x0C: *p += 8; return 0;
    case 0x01: uleb(p); return 0;
    case 0x09: sleb(p); return 0;
    default: return -1;
    }
}

typedef struct {
    int cfa_reg;
    int64_t cfa_off;
    int rbp_how; /* 0 same, 1 at offset, 2 complex */
    int64_t rbp_off;
    int ra_how; /* 0 unknown, 1 at offset, 2 complex, 3 undefined */
    int64_t ra_off;
} row_t;

typedef struct {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    int signal_frame;
} cie_t;

/* Runs CFA instructions until the location passes `target`; returns -1 on anything not handled. */
static int run_cfa(const uint8_t *p, const uint8_t *end, const cie_t *cie, uintptr_t loc, uintptr_t target,
                   row_t *row, const row_t *initial) {
    row_t stack[8];
    int depth = 0;
    while (p < end) {
        uint8_t op = *p++;
        uint8_t hi = op & 0xC0, lo = op & 0x3F;
        uint64_t reg;
        int64_t off;
        if (hi == 0x40) {
            loc += lo * cie->code_align;
            if (loc > target) return 0;
            continue;
        }
        if (hi == 0x80) {
            off = (int64_t)uleb(&p) * cie->data_align;
            reg = lo;
            goto set_offset;
        }
        if (hi == 0xC0) {
            reg = lo;
            goto restore;
        }
        switch (op) {
        case 0x00: break;
        case 0x02: loc += *p++ * cie->code_align; if (loc > target) return 0; break;
        case 0x03: { uint16_t d; memcpy(&d, p, 2); p += 2; loc += d * cie->code_align; if (loc > target) return 0; break; }
        case 0x04: { uint32_t d; memcpy(&d, p, 4); p += 4; loc += d * cie->code_align; if (loc > target) return 0; break; }
        case 0x05: reg = uleb(&p); off = (int64_t)uleb(&p) * cie->data_align; goto set_offset;
        case 0x11: reg = uleb(&p); off = sleb(&p) * cie->data_align; goto set_offset;
        case 0x06: reg = uleb(&p); goto restore;
        case 0x07: /* undefined */
            reg = uleb(&p);
            if (reg == cie->ra_reg) row->ra_how = 3;
            else if (reg == REG_RBP) row->rbp_how = 2;
            break;
        case 0x08: /* same value */
            reg = uleb(&p);
            if (reg == REG_RBP) row->rbp_how = 0;
            else if (reg == cie->ra_reg) return -1;
            break;
        case 0x09: reg = uleb(&p); uleb(&p); if (reg == REG_RBP || reg == cie->ra_reg) return -1; break;
        case 0x0A: if (depth == 8) return -1; stack[depth++] = *row; break;
        case 0x0B: if (depth == 0) return -1; *row = stack[--depth]; break;
        case 0x0C: row->cfa_reg = (int)uleb(&p); row->cfa_off = (int64_t)uleb(&p); break;
        case 0x12: row->cfa_reg = (int)uleb(&p); row->cfa_off = sleb(&p) * cie->data_align; break;
        case 0x0D: row->cfa_reg = (int)uleb(&p); break;
        case 0x0E: row->cfa_off = (int64_t)uleb(&p); break;
        case 0x13: row->cfa_off = sleb(&p) * cie->data_align; break;
        case 0x0F: return -1; /* CFA by expression */
        case 0x10: case 0x16: /* expression / val_expression */
            reg = uleb(&p);
            { uint64_t n = uleb(&p); p += n; }
            if (reg == REG_RBP || reg == cie->ra_reg) return -1;
            break;
        case 0x14: case 0x15: /* val_offset(_sf) */
            reg = uleb(&p);
            if (op == 0x14) uleb(&p); else sleb(&p);
            if (reg == REG_RBP || reg == cie->ra_reg) return -1;
            break;
        case 0x2E: uleb(&p); break; /* GNU_args_size */
        default: return -1;
        }
        continue;
    set_offset:
        if (reg == REG_RBP) { row->rbp_how = 1; row->rbp_off = off; }
        else if (reg == cie->ra_reg) { row->ra_how = 1; row->ra_off = off; }
        continue;
    restore:
        if (!initial) return -1; /* restore inside the CIE itself */
        if (reg == REG_RBP) { row->rbp_how = initial->rbp_how; row->rbp_off = initial->rbp_off; }
        else if (reg == cie->ra_reg) { row->ra_how = initial->ra_how; row->ra_off = initial->ra_off; }
    }
    return 0;
}

static int parse_cie(const uint8_t *cie_p, cie_t *cie, const uint8_t **insns, const uint8_t **end) {
    uint32_t len32;
    memcpy(&len32, cie_p, 4);
    if (len32 == 0xFFFFFFFF) return -1;
    const uint8_t *p = cie_p + 8;
    *end = cie_p + 4 + len32;
    uint8_t version = *p++;
    const char *aug = (const char *)p;
    p += strlen(aug) + 1;
    cie->code_align = uleb(&p);
    cie->data_align = sleb(&p);
    cie->ra_reg = version == 1 ? *p++ : uleb(&p);
    cie->fde_enc = 0;
    cie->signal_frame = 0;
    if (aug[0] == 'z') {
        uint64_t n = uleb(&p);
        const uint8_t *data = p;
        p += n;
        for (const char *a = aug + 1; *a; a++) {
            if (*a == 'R') cie->fde_enc = *data++;
            else if (*a == 'P') { uint8_t enc = *data++; if (encoded_size(enc, &data)) return -1; }
            else if (*a == 'L') data++;
            else if (*a == 'S') cie->signal_frame = 1;
            else if (*a == 'B') { }
            else return -1;
        }
    } else if (aug[0]) {
        return -1;
    }
    *insns = p;
    return 0;
}

/* The rule for a code address (already adjusted to lie inside the call instruction). */
static int compute_rule(uintptr_t pc, rule_t *out) {
    struct dwarf_eh_bases bases;
    const uint8_t *fde = _Unwind_Find_FDE((void *)pc, &bases);
    if (!fde) {
        memset(out, 0, sizeof *out);
        out->end = 1;
        out->valid = 1;
        return 0;
    }
    uint32_t len32, cie_off;
    memcpy(&len32, fde, 4);
    if (len32 == 0xFFFFFFFF) return -1;
    memcpy(&cie_off, fde + 4, 4);
    const uint8_t *cie_p = fde + 4 - cie_off;
    cie_t cie;
    const uint8_t *cie_insns, *cie_end;
    if (parse_cie(cie_p, &cie, &cie_insns, &cie_end) != 0 || cie.signal_frame) return -1;
    const uint8_t *p = fde + 8;
    if (encoded_size(cie.fde_enc, &p) || encoded_size(cie.fde_enc & 0x0F, &p)) return -1; /* pc_begin, range */
    const uint8_t *cie_aug = cie_p + 9;
    if (*cie_aug == 'z') {
        uint64_t n = uleb(&p);
        p += n;
    }
    const uint8_t *fde_end = fde + 4 + len32;
    row_t initial = {REG_RSP, 8, 0, 0, 0, 0};
    if (run_cfa(cie_insns, cie_end, &cie, 0, UINTPTR_MAX, &initial, NULL) != 0) return -1;
    row_t row = initial;
    if (run_cfa(p, fde_end, &cie, (uintptr_t)bases.func, pc, &row, &initial) != 0) return -1;
    if ((row.cfa_reg != REG_RSP && row.cfa_reg != REG_RBP) || row.rbp_how == 2 || row.ra_how == 2 ||
        row.ra_how == 0)
        return -1;
    memset(out, 0, sizeof *out);
    out->valid = 1;
    if (row.ra_how == 3) {
        out->end = 1;
        return 0;
    }
    if (row.cfa_off < 0 || row.cfa_off > (1 << 30) || row.ra_off < -32768 || row.ra_off > 32767 ||
        row.rbp_off < -32768 || row.rbp_off > 32767)
        return -1;
    out->cfa_rbp = row.cfa_reg == REG_RBP;
    out->cfa_off = (int32_t)row.cfa_off;
    out->ra_off = (int16_t)row.ra_off;
    out->rbp_saved = row.rbp_how == 1;
    out->rbp_off = (int16_t)row.rbp_off;
    return 0;
}

static int lookup(uintptr_t pc, rule_t *rule) {
    uintptr_t h = (pc * 0x9E3779B97F4A7C15ull) >> (64 - CACHE_BITS);
    for (unsigned probe = 0; probe < 16; probe++) {
        slot_t *s = &cache[(h + probe) & (CACHE_SIZE - 1)];
        uintptr_t key = __atomic_load_n(&s->key, __ATOMIC_ACQUIRE);
        if (key == pc) {
            *rule = s->rule;
            return 0;
        }
        if (key == 0) break;
    }
    if (compute_rule(pc, rule) != 0) return -1;
    if (cache_used >= CACHE_SIZE / 2) return 0; /* full enough: compute every time, stay correct */
    for (unsigned probe = 0; probe < 16; probe++) {
        slot_t *s = &cache[(h + probe) & (CACHE_SIZE - 1)];
        uintptr_t expected = 0;
        /* claim the slot, fill it, then publish the key: readers never see a half-written rule */
        if (__atomic_compare_exchange_n(&s->key, &expected, pc | BUSY, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            s->rule = *rule;
            __atomic_store_n(&s->key, pc, __ATOMIC_RELEASE);
            __atomic_fetch_add(&cache_used, 1, __ATOMIC_RELAXED);
            return 0;
        }
        if (expected == pc || expected == (pc | BUSY)) return 0;
    }
    return 0;
}

/* Fills out[] with return addresses, outermost frames last, skipping the tracker's own frames.
 * Returns the count, or -1 when a frame needs the full unwinder. Stops after `stop_after` frames of
 * the eval loop when that is not 0. */
__attribute__((noinline)) int _lbt_fast_unwind(uint64_t *out, uint32_t max, uint32_t stop_after) {
    if (!cache) return -1;
    uintptr_t ip, rsp, rbp;
    __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2" : "=r"(ip), "=r"(rsp), "=r"(rbp));
    uint32_t n = 0, evals = 0;
    int first = 1;
    for (int guard = 0; guard < 512; guard++) {
        rule_t rule;
        /* a return address points after its call: look the rule up inside the call instruction */
        if (lookup(first ? ip : ip - 1, &rule) != 0) return -1;
        first = 0;
        if (rule.end) break;
        uintptr_t cfa = (rule.cfa_rbp ? rbp : rsp) + (uintptr_t)(intptr_t)rule.cfa_off;
        if (cfa <= rsp || cfa - rsp > (64u << 20) || (cfa & 7)) return n ? (int)n : -1;
        uintptr_t ra = *(const uintptr_t *)(cfa + rule.ra_off);
        if (rule.rbp_saved) rbp = *(const uintptr_t *)(cfa + rule.rbp_off);
        rsp = cfa;
        ip = ra;
        if (!ip) break;
        if (n == 0 && _lbt_in_self(ip)) continue;
        out[n++] = ip;
        if (stop_after && _lbt_in_eval(ip) && ++evals >= stop_after) break;
        if (n >= max) break;
    }
    return (int)n;
}

#else

void _lbt_unwind_init(void) {}
int _lbt_fast_unwind(uint64_t *out, uint32_t max, uint32_t stop_after) {
    (void)out, (void)max, (void)stop_after;
    return -1;
}

#endif
