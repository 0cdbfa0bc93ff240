/* SPDX-License-Identifier: MIT */
/*
 * threadcpu.c - per-thread CPU clocks of one side (see threadcpu.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "threadcpu.h"

void zp_tcpu_init(struct zp_tcpu *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
}

void zp_tcpu_destroy(struct zp_tcpu *t)
{
	pthread_mutex_destroy(&t->lock);
}

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int zp_tcpu_register(struct zp_tcpu *t, const char *name, pthread_t th)
{
	clockid_t clk;
	int ret = pthread_getcpuclockid(th, &clk);

	if (ret)
		return -ret;
	pthread_mutex_lock(&t->lock);
	if (t->n == ZP_TCPU_MAX) {
		pthread_mutex_unlock(&t->lock);
		return -ENOSPC;
	}
	snprintf(t->e[t->n].name, ZP_TCPU_NAME, "%s", name);
	t->e[t->n].clk = clk;
	t->e[t->n].t0_ns = 0;
	t->n++;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int zp_tcpu_register_self(struct zp_tcpu *t, const char *name)
{
	return zp_tcpu_register(t, name, pthread_self());
}

void zp_tcpu_start(struct zp_tcpu *t)
{
	unsigned i;

	pthread_mutex_lock(&t->lock);
	for (i = 0; i < t->n; i++)
		t->e[i].t0_ns = clock_ns(t->e[i].clk);
	pthread_mutex_unlock(&t->lock);
}

void zp_tcpu_read(struct zp_tcpu *t, struct zp_thread_use *out)
{
	unsigned i;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&t->lock);
	for (i = 0; i < t->n; i++) {
		uint64_t now = clock_ns(t->e[i].clk);

		memcpy(out->name[i], t->e[i].name, ZP_TCPU_NAME);
		out->cpu_s[i] = now > t->e[i].t0_ns
					? (double)(now - t->e[i].t0_ns) / 1e9
					: 0;
		out->total_s += out->cpu_s[i];
	}
	out->n = t->n;
	pthread_mutex_unlock(&t->lock);
}
