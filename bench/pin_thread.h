/* SPDX-License-Identifier: MIT */
/*
 * pin_thread.h - pin the calling thread of a bench tool to one CPU.
 */
#ifndef ZC_BENCH_PIN_THREAD_H
#define ZC_BENCH_PIN_THREAD_H

#include <pthread.h>
#include <sched.h>

/*
 * Pin the calling thread to @cpu; a negative @cpu leaves it where it is.
 * Best effort: where the CPU does not exist (a one-CPU machine) the
 * measurement is still valid, only less interesting.
 */
static inline void bench_pin_thread(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

#endif /* ZC_BENCH_PIN_THREAD_H */
