/* SPDX-License-Identifier: MIT */
/*
 * threadcpu.h - CPU time of each thread that works for one side of a
 * test: its reactors, its consumer, its RPC workers.
 *
 * /proc/stat (cpu.h) counts whole CPUs, so on a 2-CPU machine where the
 * sender shares a CPU with the receiver it cannot say what receiving
 * cost.  A thread's own CPU clock (pthread_getcpuclockid) can: it counts
 * that thread's user and system time wherever it ran, softirq work done
 * in its syscalls included, other processes excluded.  Receive work the
 * kernel does in softirq on the sender's CPU (loopback) is not in it.
 */
#ifndef ZCPERF_THREADCPU_H
#define ZCPERF_THREADCPU_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define ZP_TCPU_MAX 16
#define ZP_TCPU_NAME 16

/* What a side reports: the seconds each thread ran in the interval. */
struct zp_thread_use {
	unsigned n;
	char name[ZP_TCPU_MAX][ZP_TCPU_NAME];
	double cpu_s[ZP_TCPU_MAX];
	double total_s;
};

/* The live registry of one engine; zero-initialise, then _init. */
struct zp_tcpu {
	pthread_mutex_t lock;
	unsigned n;
	struct {
		char name[ZP_TCPU_NAME];
		clockid_t clk;
		uint64_t t0_ns; /* at zp_tcpu_start, 0 if registered after */
	} e[ZP_TCPU_MAX];
};

void zp_tcpu_init(struct zp_tcpu *t);
void zp_tcpu_destroy(struct zp_tcpu *t);
/*
 * Count thread @th (or the calling thread, for zp_tcpu_register_self)
 * under @name.  Any thread.  A thread registered after zp_tcpu_start()
 * counts from its creation, which for a worker that only waited is the
 * interval's cost too.  Returns 0, -ENOSPC when full, or -errno.
 */
int zp_tcpu_register(struct zp_tcpu *t, const char *name, pthread_t th);
int zp_tcpu_register_self(struct zp_tcpu *t, const char *name);
/* Take every clock's starting value. */
void zp_tcpu_start(struct zp_tcpu *t);
/* The time each thread ran since zp_tcpu_start(); the threads must still
 * exist (their clocks die with them). */
void zp_tcpu_read(struct zp_tcpu *t, struct zp_thread_use *out);

#endif /* ZCPERF_THREADCPU_H */
