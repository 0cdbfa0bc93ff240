/* SPDX-License-Identifier: MIT */
/*
 * cpu.c - /proc/stat and getrusage snapshots (see cpu.h for the method).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"

uint64_t zp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void zp_sleep_until(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000ull),
		.tv_nsec = (long)(ns % 1000000000ull),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

uint64_t zp_rss_kb(void)
{
	unsigned long long size, resident;
	FILE *f = fopen("/proc/self/statm", "re");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	if (n != 2)
		return 0;
	return resident * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

static uint64_t rusage_us(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/*
 * One "cpuN user nice system idle iowait irq softirq steal ..." line.
 * guest time is already inside user, so it is not added again.
 */
static int parse_cpu_line(const char *line, unsigned *cpu, uint64_t *busy,
			  uint64_t *total)
{
	unsigned long long v[8] = { 0 };
	int n;

	n = sscanf(line, "cpu%u %llu %llu %llu %llu %llu %llu %llu %llu", cpu,
		   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	if (n < 5)
		return -EINVAL;
	*busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
	*total = *busy + v[3] + v[4];
	return 0;
}

int zp_cpu_snap(struct zp_cpu_snap *s, const cpu_set_t *set)
{
	char line[512];
	FILE *f;
	int ret = 0;

	memset(s, 0, sizeof(*s));
	s->wall_ns = zp_now_ns();
	s->proc_us = rusage_us();
	f = fopen("/proc/stat", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		uint64_t busy, total;
		unsigned cpu;

		if (strncmp(line, "cpu", 3) || line[3] < '0' || line[3] > '9')
			continue;
		if (parse_cpu_line(line, &cpu, &busy, &total))
			continue;
		if (set && (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, set)))
			continue;
		s->busy_ticks += busy;
		s->total_ticks += total;
		s->ncpus++;
	}
	if (!s->ncpus)
		ret = -ENOENT;
	fclose(f);
	return ret;
}

void zp_cpu_diff(const struct zp_cpu_snap *a, const struct zp_cpu_snap *b,
		 struct zp_cpu_use *out)
{
	double wall = (double)(b->wall_ns - a->wall_ns) / 1e9;
	uint64_t busy = b->busy_ticks - a->busy_ticks;
	uint64_t total = b->total_ticks - a->total_ticks;

	memset(out, 0, sizeof(*out));
	out->ncpus = a->ncpus;
	out->proc_s = (double)(b->proc_us - a->proc_us) / 1e6;
	if (total && a->ncpus) {
		out->util = 100.0 * (double)busy / (double)total;
		/* Ticks are coarse (USER_HZ); scale the share by wall time. */
		out->busy_s = out->util / 100.0 * wall * a->ncpus;
	}
}

double zp_service_demand(const struct zp_cpu_use *u, uint64_t bytes)
{
	if (!bytes)
		return 0;
	return u->busy_s * 1e6 / ((double)bytes / 1024.0);
}
