/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_timer.c - zc_timer (stack/timer.c): a sleeping reactor
 * wakes for its own timer, on its own thread, never before the time asked;
 * a timer may re-arm itself from its callback; arming checks its input; a
 * time already past fires in the next batch; a timer still armed when its
 * reactor is destroyed never fires and does not hold the destroy up.
 */
#include <errno.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <zcrpc/stack.h>

#define CHAIN 3
#define STEP_NS 5000000ull	/* 5 ms between the chain's times */
#define LIVENESS_NS 5000000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct chain {
	struct zc_timer t;
	struct zc_reactor *r;
	uint64_t when[CHAIN];
	unsigned early, off_thread, bad_status, rearm_failed;
	_Atomic unsigned fired;
};

static void chain_fn(struct zc_timer *t, int status)
{
	struct chain *c = (struct chain *)t;
	unsigned n = atomic_load(&c->fired);

	if (now_ns() < c->when[n])
		c->early++;
	if (zc_reactor_current() != c->r)
		c->off_thread++;
	if (status)
		c->bad_status++;
	if (n + 1 < CHAIN) {
		c->when[n + 1] = c->when[n] + STEP_NS;
		if (zc_timer_arm(c->r, t, c->when[n + 1]))
			c->rearm_failed++;
	}
	atomic_store(&c->fired, n + 1);
}

static int arm_first(void *arg)
{
	struct chain *c = arg;

	c->when[0] = now_ns() + STEP_NS;
	return zc_timer_arm(c->r, &c->t, c->when[0]);
}

/* Nothing but the timer can wake the spawned reactor once the call that
 * armed it returned: each firing is the reactor waking for it. */
Test(stack_timer, sleeping_reactor_wakes_for_its_timer)
{
	static struct chain c = { .t.fn = chain_fn };
	uint64_t deadline = now_ns() + LIVENESS_NS;

	cr_assert_eq(zc_reactor_spawn(NULL, &c.r), 0);
	cr_assert_eq(zc_reactor_call(c.r, arm_first, &c), 0);
	while (atomic_load(&c.fired) < CHAIN && now_ns() < deadline)
		usleep(1000);
	cr_assert_eq(atomic_load(&c.fired), CHAIN,
		     "fired %u of %u times within 5 s", atomic_load(&c.fired),
		     CHAIN);
	cr_assert_eq(c.early, 0, "a timer fired before its time");
	cr_assert_eq(c.off_thread, 0);
	cr_assert_eq(c.bad_status, 0);
	cr_assert_eq(c.rearm_failed, 0);
	cr_assert_not(zc_timer_armed(&c.t));
	cr_assert_eq(zc_reactor_destroy(c.r), 0);
}

struct once {
	struct zc_timer t;
	unsigned fired;
	int status;
};

static void once_fn(struct zc_timer *t, int status)
{
	struct once *o = (struct once *)t;

	o->fired++;
	o->status = status;
}

Test(stack_timer, arm_checks_and_past_times)
{
	struct zc_reactor *r;
	struct once o = { .t.fn = once_fn }, nofn = { 0 };
	unsigned batches = 0;

	cr_assert_eq(zc_reactor_create(NULL, &r), 0);
	cr_assert_eq(zc_timer_arm(r, &nofn.t, 0), -EINVAL);
	cr_assert_not(zc_timer_armed(&nofn.t));
	/* A time long past: due at once. */
	cr_assert_eq(zc_timer_arm(r, &o.t, 1), 0);
	cr_assert(zc_timer_armed(&o.t));
	cr_assert_eq(zc_timer_arm(r, &o.t, 1), -EBUSY);
	while (!o.fired && batches++ < 1000)
		cr_assert_geq(zc_reactor_run_once(r, 1000), 0);
	cr_assert_eq(o.fired, 1);
	cr_assert_eq(o.status, 0);
	cr_assert_not(zc_timer_armed(&o.t));
	/* An hour away: the destroy neither waits for it nor fires it. */
	cr_assert_eq(zc_timer_arm(r, &o.t, now_ns() + 3600000000000ull), 0);
	cr_assert_geq(zc_reactor_run_once(r, 0), 0);
	cr_assert_eq(zc_reactor_destroy(r), 0);
	cr_assert_eq(o.fired, 1);
}
