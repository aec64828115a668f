/* Owns the capture file: one global buffer under one lock, cut into checksummed chunks and written with
 * write(2), so that a reader can use every chunk that reached the file before a SIGKILL. Allocation events
 * are kept as columns (operation, address, size, stack) and encoded at each flush, the narrowest integer
 * width per column and chunk: a reader decodes them in bulk, and a compressor finds their repetitions;
 * the rarer records (times, threads, stacks, code, marks) go in a side stream before the columns. */
#include "lbt.h" /* first: it defines _GNU_SOURCE */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* One lock for the buffer and for the stack/code tables it references. Nothing that can take another
 * lock is ever called while it is held (no unwinding, no dl_iterate_phdr, no malloc): the only lock
 * order in the tracker is "ours last", so it cannot deadlock with the loader or libc. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *buf; /* chunk header, counts, side stream; the columns are encoded after it at flush */
static size_t cap, side_cap, len;
static int fd = -1;
uint32_t _lbt_last_thread;
uint64_t _lbt_start_ns;
uint32_t _lbt_chunk_events;
uint32_t _lbt_side_at;
uint8_t *_lbt_ev_op;
uint64_t *_lbt_ev_addr, *_lbt_ev_size;
uint32_t *_lbt_ev_stack;

/* payload: u32 side stream length, u32 event count, side stream, columns */
#define SIDE_START (LBT_CHUNK_HEADER_SIZE + 8)
#define COLUMNS_MAX ((size_t)LBT_EVENTS_PER_CHUNK * (1 + 8 + 8 + 8) + 3)

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

/* zlib's CRC-32, so that the reader checks a chunk with zlib.crc32 */
static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--) c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void put_le16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static int write_all(const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int _lbt_writer_init(size_t capacity) {
    crc_init();
    side_cap = capacity;
    cap = SIDE_START + side_cap + COLUMNS_MAX;
    buf = _lbt_sys_mmap(cap);
    _lbt_ev_op = _lbt_sys_mmap(LBT_EVENTS_PER_CHUNK);
    _lbt_ev_addr = _lbt_sys_mmap(LBT_EVENTS_PER_CHUNK * sizeof *_lbt_ev_addr);
    _lbt_ev_size = _lbt_sys_mmap(LBT_EVENTS_PER_CHUNK * sizeof *_lbt_ev_size);
    _lbt_ev_stack = _lbt_sys_mmap(LBT_EVENTS_PER_CHUNK * sizeof *_lbt_ev_stack);
    if (!buf || !_lbt_ev_op || !_lbt_ev_addr || !_lbt_ev_size || !_lbt_ev_stack) return -1;
    len = SIDE_START;
    return 0;
}

size_t _lbt_writer_capacity(void) { return side_cap; }

static unsigned width_of(uint64_t max) {
    return max < (1u << 8) ? 1 : max < (1u << 16) ? 2 : max < (1ull << 32) ? 4 : 8;
}

/* One column: a width byte (1, 2, 4 or 8), then n little-endian values of that width. */
static uint8_t *put_column(uint8_t *p, const uint64_t *v, uint32_t n, unsigned w) {
    *p++ = (uint8_t)w;
    switch (w) {
    case 1:
        for (uint32_t i = 0; i < n; i++) p[i] = (uint8_t)v[i];
        break;
    case 2:
        for (uint32_t i = 0; i < n; i++) put_le16(p + 2 * i, (uint32_t)v[i]);
        break;
    case 4:
        for (uint32_t i = 0; i < n; i++) put_le32(p + 4 * i, (uint32_t)v[i]);
        break;
    default:
        for (uint32_t i = 0; i < n; i++) put_le64(p + 8 * i, v[i]);
    }
    return p + (size_t)n * w;
}

/* The event columns of this chunk, after the side stream. Addresses are written whole (a FAILED event's
 * entry is its allocator kind): a free repeats its block's address, which a compressor finds, and a
 * reader needs no running sum. */
static uint8_t *put_columns(uint8_t *p) {
    uint32_t n = _lbt_chunk_events;
    memcpy(p, _lbt_ev_op, n);
    p += n;
    uint64_t max_addr = 0, max_size = 0, max_stack = 0;
    for (uint32_t i = 0; i < n; i++) {
        max_addr |= _lbt_ev_addr[i];
        max_size |= _lbt_ev_size[i];
        if (_lbt_ev_stack[i] > max_stack) max_stack = _lbt_ev_stack[i];
    }
    p = put_column(p, _lbt_ev_addr, n, width_of(max_addr));
    p = put_column(p, _lbt_ev_size, n, width_of(max_size));
    /* Stacks are 32-bit: widen them through the address array, which is written already. A release has
     * no stack: it repeats the entry before it (which compresses far better than a 0 between two ids). */
    uint32_t carry = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t op = _lbt_ev_op[i];
        if (op == LBT_OP_FREE || op == LBT_OP_MUNMAP || op == LBT_OP_RESTORE) {
            _lbt_ev_addr[i] = carry;
        } else {
            carry = _lbt_ev_stack[i];
            _lbt_ev_addr[i] = carry;
        }
    }
    return put_column(p, _lbt_ev_addr, n, width_of(max_stack));
}

void _lbt_lock(void) { pthread_mutex_lock(&lock); }
void _lbt_unlock(void) { pthread_mutex_unlock(&lock); }

void _lbt_flush_locked(void) {
    if ((len > SIDE_START || _lbt_chunk_events) && fd >= 0) {
        put_le32(buf + LBT_CHUNK_HEADER_SIZE, (uint32_t)(len - SIDE_START));
        put_le32(buf + LBT_CHUNK_HEADER_SIZE + 4, _lbt_chunk_events);
        if (_lbt_chunk_events) len = (size_t)(put_columns(buf + len) - buf);
        size_t payload = len - LBT_CHUNK_HEADER_SIZE;
        put_le16(buf, LBT_CHUNK_SYNC);
        put_le16(buf + 2, 0);
        put_le32(buf + 4, (uint32_t)payload);
        put_le32(buf + 8, crc32_of(buf + LBT_CHUNK_HEADER_SIZE, payload));
        /* One write(2) per chunk: if the process dies during it, the file ends inside this chunk and the
         * reader drops just this chunk. */
        if (write_all(buf, len) != 0) {
            _lbt_warn("cannot write the capture (%s); tracking stops", strerror(errno));
            close(fd);
            fd = -1;
            _lbt_active = 0;
        }
    }
    len = SIDE_START;
    /* Every chunk decodes on its own: address deltas and the current thread restart. */
    _lbt_chunk_events = 0;
    _lbt_side_at = 0;
    _lbt_last_thread = 0;
}

uint8_t *_lbt_reserve(size_t n) {
    if (n > side_cap) return NULL;
    /* Also room for one event: the TIME/SWITCH written before an event must land in the event's chunk. */
    if (len + n > SIDE_START + side_cap || _lbt_chunk_events >= LBT_EVENTS_PER_CHUNK) _lbt_flush_locked();
    return buf + len;
}

void _lbt_commit(uint8_t *end) { len = (size_t)(end - buf); }

static void expand_template(const char *tmpl, pid_t pid, int forked_child, char *out, size_t room) {
    size_t o = 0;
    int had_pid = 0;
    for (const char *t = tmpl; *t && o + 24 < room; t++) {
        if (t[0] == '%' && t[1] == 'p') {
            o += (size_t)snprintf(out + o, room - o, "%d", (int)pid);
            had_pid = 1;
            t++;
        } else if (t[0] == '%' && t[1] == '%') {
            out[o++] = '%';
            t++;
        } else {
            out[o++] = *t;
        }
    }
    out[o] = 0;
    /* A forked child must never truncate its parent's capture. */
    if (forked_child && !had_pid) snprintf(out + o, room - o, ".%d", (int)pid);
}

int _lbt_writer_open(const char *tmpl, int forked_child) {
    char path[sizeof _lbt_opt.capture + 32];
    pid_t pid = getpid();
    expand_template(tmpl, pid, forked_child, path, sizeof path);
    /* O_CLOEXEC: programs the target execs must not inherit (and append to) our file. */
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        _lbt_warn("cannot create capture %s (%s); not tracking", path, strerror(errno));
        return -1;
    }
    struct timespec real, mono;
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    _lbt_start_ns = (uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec;
    uint32_t flags = 0;
    if (_lbt_python_present() && _lbt_opt.python_stacks && !_lbt_python_unreadable())
        flags |= LBT_FLAG_PYTHON_STACKS;
    flags |= _lbt_python_unreadable();
    if (_lbt_opt.native_depth > 0) flags |= LBT_FLAG_NATIVE_STACKS;
    if (forked_child) flags |= LBT_FLAG_FORKED_CHILD;
    uint8_t h[LBT_HEADER_SIZE];
    memset(h, 0, sizeof h);
    memcpy(h, LBT_FORMAT_MAGIC, 8);
    put_le16(h + 8, LBT_FORMAT_VERSION);
    put_le16(h + 10, LBT_HEADER_SIZE);
    put_le32(h + 12, (uint32_t)pid);
    put_le32(h + 16, (uint32_t)getppid());
    put_le32(h + 20, flags);
    put_le64(h + 24, (uint64_t)real.tv_sec * 1000000000u + (uint64_t)real.tv_nsec);
    put_le64(h + 32, _lbt_start_ns);
    put_le32(h + 40, _lbt_python_version());
    put_le32(h + 44, (uint32_t)_lbt_opt.tick_ms);
    put_le32(h + 48, (uint32_t)_lbt_opt.native_depth);
    put_le32(h + 52, (uint32_t)sysconf(_SC_PAGESIZE));
    put_le32(h + 56, (uint32_t)cap);
    put_le32(h + 60, crc32_of(h, 60));
    if (write_all(h, sizeof h) != 0) {
        _lbt_warn("cannot write capture %s (%s); not tracking", path, strerror(errno));
        close(fd);
        fd = -1;
        return -1;
    }
    if (_lbt_opt.debug) _lbt_warn("writing capture %s", path);
    return 0;
}

/* In a forked child: the lock was taken by the forking thread in the prepare handler and fork copied it
 * locked; re-initialising (not unlocking) is the only safe way to reset a mutex copied by fork. The
 * buffer holds nothing (flushed in prepare) and the parent's descriptor must not be written to. */
void _lbt_writer_after_fork_child(void) {
    pthread_mutex_init(&lock, NULL);
    if (fd >= 0) close(fd);
    fd = -1;
    len = SIDE_START;
    _lbt_chunk_events = 0;
    _lbt_side_at = 0;
    _lbt_last_thread = 0;
}
