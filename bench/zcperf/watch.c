/* SPDX-License-Identifier: MIT */
/*
 * watch.c - the watchdog of watch.h.  Every watching thread owns one slot
 * (taken on first use; a handful of threads ever watch), writes it with
 * release stores and the watchdog reads it with acquire loads, so no lock
 * is shared with the threads it watches.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cpu.h"
#include "watch.h"

#define SLOTS 8

struct slot {
	_Atomic(const char *) what;   /* NULL: not in a bracket */
	atomic_uint_fast64_t since_ns;
};

static struct slot slots[SLOTS];
static atomic_uint nslots;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Thread_local struct slot *mine;

static void *watchdog_main(void *arg)
{
	for (;;) {
		unsigned i, n = atomic_load(&nslots);

		for (i = 0; i < n && i < SLOTS; i++) {
			const char *what = atomic_load_explicit(
				&slots[i].what, memory_order_acquire);
			uint64_t since = atomic_load_explicit(
				&slots[i].since_ns, memory_order_acquire);
			/* The clock is read after the bracket's start: read
			 * before, a bracket begun since (this thread may be
			 * preempted between the two) made now - since wrap
			 * around and look stuck. */
			uint64_t now = zp_now_ns();

			if (what && now - since > ZP_WATCH_LIMIT_S * 1000000000ull) {
				fprintf(stderr, "zcperf: stuck for %u s in %s: a "
						"reactor stopped answering; "
						"aborting\n",
					ZP_WATCH_LIMIT_S, what);
				abort();
			}
		}
		sleep(1);
	}
	return NULL;
}

static void start(void)
{
	pthread_t t;

	/* Without the watchdog the program still works, unwatched. */
	if (!pthread_create(&t, NULL, watchdog_main, NULL))
		pthread_detach(t);
}

void zp_watch_begin(const char *what)
{
	pthread_once(&once, start);
	if (!mine) {
		unsigned i = atomic_fetch_add(&nslots, 1);

		if (i >= SLOTS)
			return;
		mine = &slots[i];
	}
	atomic_store_explicit(&mine->since_ns, zp_now_ns(),
			      memory_order_release);
	atomic_store_explicit(&mine->what, what, memory_order_release);
}

void zp_watch_end(void)
{
	if (mine)
		atomic_store_explicit(&mine->what, NULL, memory_order_release);
}
