/* Fork handling: the parent's capture stays consistent across fork(), and a forked child writes a
 * capture of its own (named from the template with the child's pid) from a clean state. */
#include "lbt.h" /* first: it defines _GNU_SOURCE */

#include <pthread.h>

static int was_active;
static int saved_in_hook;

/* Before fork: take the lock so that no other thread is half-way through a record when the address
 * space is copied, and flush so the child inherits an empty buffer. */
static void prepare(void) {
    saved_in_hook = _lbt_in_hook;
    _lbt_in_hook = 1;
    was_active = _lbt_active;
    _lbt_lock();
    if (was_active) _lbt_flush_locked();
}

static void parent(void) {
    _lbt_unlock();
    _lbt_in_hook = saved_in_hook;
}

static void child(void) {
    _lbt_writer_after_fork_child(); /* re-initialises the lock this thread took in prepare() */
    if (was_active && _lbt_opt.follow_fork) {
        _lbt_stop_flusher_state();
        _lbt_start_capture(1);
    } else {
        _lbt_active = 0;
    }
    _lbt_in_hook = saved_in_hook;
}

void _lbt_fork_install(void) { pthread_atfork(prepare, parent, child); }
