/* SPDX-License-Identifier: MIT */
/*
 * cpu.h - CPU utilisation and service demand, the netperf way.
 *
 * netperf reads /proc/stat before and after a run and reports the busy
 * share of the CPUs, then divides the busy CPU time by the work done
 * (service demand).  On loopback both ends share the machine, so zcperf
 * counts, for each side, only the CPUs that side runs on: its -C list, or
 * the affinity taskset gave it (opts.c).  With the sides pinned apart (the
 * tour, -C / --server-cpus, or taskset) the client and server figures are
 * separate; unpinned, both are the whole machine and equal.  Softirq
 * time is busy time, as in netperf, because on loopback the receive path
 * runs in softirq on the sender's CPU.
 * getrusage() is taken too: the process's own CPU seconds, immune to other
 * load on a shared machine.
 */
#ifndef ZCPERF_CPU_H
#define ZCPERF_CPU_H

#include <sched.h>
#include <stdint.h>

struct zp_cpu_snap {
	uint64_t busy_ticks;  /* user+nice+system+irq+softirq+steal */
	uint64_t total_ticks; /* busy + idle + iowait */
	uint64_t proc_us;     /* getrusage(RUSAGE_SELF) user + system */
	uint64_t wall_ns;     /* CLOCK_MONOTONIC */
	unsigned ncpus;       /* CPUs counted */
};

/* What a side reports for one run. */
struct zp_cpu_use {
	double util;         /* percent of the counted CPUs, 0..100 */
	double busy_s;       /* busy CPU-seconds on the counted CPUs */
	double proc_s;       /* CPU-seconds of this process (getrusage) */
	unsigned ncpus;
};

/*
 * Snapshot the CPUs in @set (NULL: every CPU).  Returns 0, or -errno when
 * /proc/stat cannot be read (then only proc_us and wall_ns are valid and
 * utilisation is reported as 0).
 */
int zp_cpu_snap(struct zp_cpu_snap *s, const cpu_set_t *set);
void zp_cpu_diff(const struct zp_cpu_snap *a, const struct zp_cpu_snap *b,
		 struct zp_cpu_use *out);
/* Service demand: microseconds of busy CPU per KiB moved (0 if none). */
double zp_service_demand(const struct zp_cpu_use *u, uint64_t bytes);

/* Resident set of this process in KiB (/proc/self/statm), 0 if unknown.
 * Taken at both ends of a run, for the "RSS stays flat" check. */
uint64_t zp_rss_kb(void);

/* Monotonic clock in ns. */
uint64_t zp_now_ns(void);
/* Sleep until zp_now_ns() reaches @ns (returns at once if it has). */
void zp_sleep_until(uint64_t ns);

#endif /* ZCPERF_CPU_H */
