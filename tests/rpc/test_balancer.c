/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_balancer.c - one client over three servers (rpc/
 * balancer.c) on loopback: calls spread by the policy; a server killed
 * under load leaves its endpoint out of rotation and every call is
 * accounted for (OK, or UNAVAILABLE only for calls its lost connection
 * may have run); restarted, it takes calls again; a server drained with
 * GOAWAY under load costs no call at all.  Every wait is bounded.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "rpc_test.h"

#define NSRV 3
#define INFLIGHT 16

static struct rt_env env[NSRV];
static struct rt_opts sopts = { .no_client = true };
static struct zc_reactor *br;
static struct zc_rpc_balancer *bal;

/* Completions, by status; failures other than "connection lost" counted
 * apart (they must never happen here). */
static atomic_uint inflight, ok, lost, other_fail, bad;

static void on_done(void *arg, int status, struct zc_chain *resp)
{
	const struct zc_rpc_error *e = zc_rpc_call_error();
	uint32_t seed = (uint32_t)(uintptr_t)arg;

	if (status == ZC_RPC_OK) {
		if (!rt_check(resp, 256, seed))
			atomic_fetch_add(&bad, 1);
		atomic_fetch_add(&ok, 1);
	} else if (status == ZC_RPC_UNAVAILABLE && e &&
		   !strcmp(e->reason, "connection lost")) {
		atomic_fetch_add(&lost, 1);
	} else {
		fprintf(stderr, "call failed: %s (%s)\n",
			zc_rpc_status_name(status), e ? e->reason : "?");
		atomic_fetch_add(&other_fail, 1);
	}
	zc_chain_release(resp);
	atomic_fetch_sub(&inflight, 1);
}

static uint32_t seq;

/* Issue @n calls, at most INFLIGHT at once; wait (bounded) for them and
 * for any call issued before. */
static void run_calls(unsigned n)
{
	struct zc_rpc_call_opts o = { .timeout_us = 5000000 };

	for (unsigned i = 0; i < n; i++) {
		struct zc_chain c = ZC_CHAIN_INIT;
		int spins = 0, ret;

		while (atomic_load(&inflight) >= INFLIGHT) {
			cr_assert_lt(++spins, 100000, "calls stopped completing");
			usleep(100);
		}
		rt_chain(zc_reactor_pool(br), &c, 256, ++seq);
		atomic_fetch_add(&inflight, 1);
		ret = zc_rpc_balancer_call(bal, ZC_RPC_METHOD_ECHO, &c, &o,
					   on_done, (void *)(uintptr_t)seq);
		cr_assert_eq(ret, 0, "balancer call: %d", ret);
	}
	for (int i = 0; i < 100000 && atomic_load(&inflight); i++)
		usleep(100);
	cr_assert_eq(atomic_load(&inflight), 0, "calls never completed");
}

static void stats(struct zc_rpc_balancer_stats *st)
{
	zc_rpc_balancer_stats(bal, st);
}

static bool rotation_is(unsigned i, bool want)
{
	struct zc_rpc_balancer_stats st;

	for (int k = 0; k < 500; k++) {
		stats(&st);
		if (st.endpoint[i].in_rotation == want)
			return true;
		usleep(10000);
	}
	return false;
}

static void setup(enum zc_rpc_balance policy)
{
	char targets[NSRV][32];
	const char *t[NSRV];

	for (int i = 0; i < NSRV; i++) {
		rt_start(&env[i], &sopts);
		snprintf(targets[i], sizeof(targets[i]), "127.0.0.1:%u",
			 env[i].port);
		t[i] = targets[i];
	}
	cr_assert_eq(zc_reactor_spawn(NULL, &br), 0);
	cr_assert_eq(zc_rpc_balancer_create(&(struct zc_rpc_balancer_config){
			.reactor = br, .targets = t, .ntargets = NSRV,
			.policy = policy, .health_interval_ms = 200,
			.health_timeout_ms = 500, .eject_ms = 200 }, &bal), 0);
	atomic_store(&ok, 0);
	atomic_store(&lost, 0);
	atomic_store(&other_fail, 0);
	atomic_store(&bad, 0);
}

static void teardown(void)
{
	cr_assert_eq(zc_rpc_balancer_destroy(bal), 0);
	for (int i = 0; i < 2000; i++)
		if (zc_reactor_destroy(br) != -EBUSY)
			break;
		else
			usleep(1000);
	for (int i = 0; i < NSRV; i++)
		rt_stop(&env[i]);
}

Test(balancer, kill_restart_and_drain, .timeout = 120)
{
	struct zc_rpc_balancer_stats st;
	struct rt_drain d;
	uint64_t sent2;
	pthread_t t;

	setup(ZC_RPC_BALANCE_ROUND_ROBIN);
	/* Round robin, everyone up: an even spread. */
	run_calls(300);
	stats(&st);
	cr_assert_eq(atomic_load(&ok), 300);
	for (int i = 0; i < NSRV; i++)
		cr_assert_eq(st.endpoint[i].sent, 100, "endpoint %d: %lu", i,
			     (unsigned long)st.endpoint[i].sent);

	/* Kill server 2 with calls in flight. */
	for (unsigned i = 0; i < INFLIGHT; i++) {
		struct zc_chain c = ZC_CHAIN_INIT;

		rt_chain(zc_reactor_pool(br), &c, 256, ++seq);
		atomic_fetch_add(&inflight, 1);
		cr_assert_eq(zc_rpc_balancer_call(bal, ZC_RPC_METHOD_ECHO, &c,
						  NULL, on_done,
						  (void *)(uintptr_t)seq), 0);
	}
	rt_server_stop(&env[2]);
	run_calls(300);
	cr_assert(rotation_is(2, false), "a dead server stays in rotation");
	cr_assert_eq(atomic_load(&other_fail), 0);
	cr_assert_eq(atomic_load(&bad), 0);
	cr_assert_leq(atomic_load(&lost), INFLIGHT,
		      "more calls lost than were in flight");
	cr_assert_eq(atomic_load(&ok) + atomic_load(&lost), 300 + INFLIGHT + 300);

	/* Restarted on its port, it comes back and takes calls again. */
	rt_server_start(&env[2], &sopts);
	cr_assert(rotation_is(2, true), "a restarted server never came back");
	stats(&st);
	sent2 = st.endpoint[2].sent;
	run_calls(300);
	stats(&st);
	cr_assert_gt(st.endpoint[2].sent, sent2);

	/* Drain server 1 under load: GOAWAY, and no call fails. */
	atomic_store(&lost, 0);
	d = (struct rt_drain){ .s = env[1].srv, .timeout_ms = 3000 };
	cr_assert_eq(pthread_create(&t, NULL, rt_drain_main, &d), 0);
	run_calls(600);
	pthread_join(t, NULL);
	cr_assert_eq(d.ret, 0, "drain: %d", d.ret);
	run_calls(300);
	cr_assert_eq(atomic_load(&lost), 0, "a drain cost calls");
	cr_assert_eq(atomic_load(&other_fail), 0);
	cr_assert_eq(atomic_load(&bad), 0);
	teardown();
}

Test(balancer, least_outstanding_uses_every_endpoint, .timeout = 60)
{
	struct zc_rpc_balancer_stats st;

	setup(ZC_RPC_BALANCE_LEAST_OUTSTANDING);
	run_calls(600);
	stats(&st);
	cr_assert_eq(atomic_load(&ok), 600);
	for (int i = 0; i < NSRV; i++)
		cr_assert_gt(st.endpoint[i].sent, 0, "endpoint %d unused", i);
	teardown();
}

Test(balancer, refuses_bad_configs)
{
	const char *t[] = { "127.0.0.1:1" };
	struct zc_rpc_balancer *b;

	cr_assert_eq(zc_reactor_spawn(NULL, &br), 0);
	cr_assert_eq(zc_rpc_balancer_create(&(struct zc_rpc_balancer_config){
			.reactor = br, .targets = t, .ntargets = 0 }, &b),
		     -EINVAL);
	cr_assert_eq(zc_rpc_balancer_create(&(struct zc_rpc_balancer_config){
			.targets = t, .ntargets = 1 }, &b), -EINVAL);
	cr_assert_eq(zc_rpc_balancer_create(&(struct zc_rpc_balancer_config){
			.reactor = br, .targets = t, .ntargets = 1,
			.policy = 7 }, &b), -EINVAL);
	cr_assert_eq(zc_reactor_destroy(br), 0);
}
