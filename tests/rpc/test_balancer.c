/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_balancer.c - one client over three servers (rpc/
 * balancer.c) on loopback: calls spread by the policy; a server killed
 * under load leaves its endpoint out of rotation and every call is
 * accounted for (OK, or UNAVAILABLE only for calls its lost connection
 * may have run); restarted, it takes calls again; a server drained with
 * GOAWAY under load costs no call at all.  Health checks are PINGs: a
 * server that does the HELLO and then reads nothing is taken out by them,
 * with no call made.  Calls that wait for ready wait in the balancer and
 * go to the first endpoint that comes up, or end at their deadline.
 * Every wait is bounded.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "frame.h"
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

/* Every test starts from zero (the TSan stand-in runs them all in one
 * process). */
static void reset_counts(void)
{
	atomic_store(&ok, 0);
	atomic_store(&lost, 0);
	atomic_store(&other_fail, 0);
	atomic_store(&bad, 0);
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
	reset_counts();
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

/* ---- PING health checks ------------------------------------------------ */

/* A listener that accepts, sends the server's HELLO and then never reads
 * nor answers: its socket is open, its "reactor" dead. */
struct silent {
	int lfd;
	uint16_t port;
	int fds[16];
	unsigned nfds;
	atomic_bool stop;
	pthread_t t;
};

static void *silent_main(void *arg)
{
	struct silent *s = arg;
	uint8_t buf[ZC_FRAME_HDR_LEN + ZC_FRAME_HELLO_LEN];

	zc__frame_encode(buf, &(struct zc_frame){ .type = ZC_FT_HELLO,
		.len = ZC_FRAME_HELLO_LEN, .msg_len = ZC_FRAME_HELLO_LEN });
	zc__hello_encode(buf + ZC_FRAME_HDR_LEN, &(struct zc_hello){
		.max_message = ZC_RPC_MAX_MESSAGE_DEFAULT,
		.max_frame = ZC_RPC_MAX_FRAME_DEFAULT });
	/* Bounded by the test: at most 60 s of 50 ms polls. */
	for (int i = 0; i < 1200 && !atomic_load(&s->stop); i++) {
		struct pollfd pfd = { .fd = s->lfd, .events = POLLIN };
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (s->nfds == 16 ||
		    send(fd, buf, sizeof(buf), MSG_NOSIGNAL) != sizeof(buf)) {
			close(fd);
			continue;
		}
		s->fds[s->nfds++] = fd;
	}
	return NULL;
}

static void silent_start(struct silent *s)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(s->lfd, 0);
	cr_assert_eq(bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(getsockname(s->lfd, (struct sockaddr *)&sin, &sl), 0);
	cr_assert_eq(listen(s->lfd, 16), 0);
	s->port = ntohs(sin.sin_port);
	cr_assert_eq(pthread_create(&s->t, NULL, silent_main, s), 0);
}

static void silent_stop(struct silent *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->t, NULL);
	for (unsigned i = 0; i < s->nfds; i++)
		close(s->fds[i]);
	close(s->lfd);
}

struct ping_wait {
	atomic_int result;
	atomic_uint_fast64_t rtt;
	atomic_uint ends;	/* exactly one, asserted */
};

static void on_ping(void *arg, int result, uint64_t rtt_ns)
{
	struct ping_wait *w = arg;

	atomic_store(&w->result, result);
	atomic_store(&w->rtt, rtt_ns);
	atomic_fetch_add(&w->ends, 1);
}

/* zc_rpc_ping() to @target, waited for (bounded): its result. */
static int ping_once(struct zc_reactor *r, const char *target,
		     unsigned timeout_ms, uint64_t *rtt)
{
	struct ping_wait w = { .result = 1 };
	struct zc_rpc_client *cli;

	cr_assert_eq(zc_rpc_client_create(&(struct zc_rpc_client_config){
		.reactor = r, .target = target, .conns = 1 }, &cli), 0);
	cr_assert_eq(zc_rpc_ping(cli, timeout_ms, on_ping, &w), 0);
	for (int i = 0; i < 1000 && !atomic_load(&w.ends); i++)
		usleep(10000);
	cr_assert_eq(zc_rpc_client_destroy(cli), 0);
	cr_assert_eq(atomic_load(&w.ends), 1, "ping ended %u times",
		     atomic_load(&w.ends));
	*rtt = atomic_load(&w.rtt);
	return atomic_load(&w.result);
}

Test(balancer, ping_pong_timeout_and_no_connection, .timeout = 60)
{
	struct silent sil;
	char t[32];
	uint64_t rtt;

	rt_start(&env[0], &sopts);
	silent_start(&sil);
	cr_assert_eq(zc_reactor_spawn(NULL, &br), 0);

	/* A server answers the PING with its PONG. */
	snprintf(t, sizeof(t), "127.0.0.1:%u", env[0].port);
	cr_assert_eq(ping_once(br, t, 2000, &rtt), 0);
	cr_assert_gt(rtt, 0);
	/* An open socket that never reads: no PONG, -ETIMEDOUT. */
	snprintf(t, sizeof(t), "127.0.0.1:%u", sil.port);
	cr_assert_eq(ping_once(br, t, 300, &rtt), -ETIMEDOUT);
	cr_assert_eq(rtt, 0);
	/* Nothing listening: no connection within the timeout. */
	snprintf(t, sizeof(t), "127.0.0.1:%u", rt_free_port());
	cr_assert_eq(ping_once(br, t, 300, &rtt), -ENOTCONN);

	cr_assert_eq(zc_reactor_destroy(br), 0);
	silent_stop(&sil);
	rt_stop(&env[0]);
}

Test(balancer, health_check_pings_eject_a_silent_server, .timeout = 60)
{
	struct zc_rpc_balancer_stats st;
	struct zc_rpc_method_stats ms;
	struct silent sil;
	char targets[2][32];
	const char *t[2] = { targets[0], targets[1] };
	int k;

	rt_start(&env[0], &sopts);
	silent_start(&sil);
	snprintf(targets[0], sizeof(targets[0]), "127.0.0.1:%u", env[0].port);
	snprintf(targets[1], sizeof(targets[1]), "127.0.0.1:%u", sil.port);
	cr_assert_eq(zc_reactor_spawn(NULL, &br), 0);
	cr_assert_eq(zc_rpc_balancer_create(&(struct zc_rpc_balancer_config){
			.reactor = br, .targets = t, .ntargets = 2,
			.health_interval_ms = 100, .health_timeout_ms = 200,
			.eject_ms = 200 }, &bal), 0);
	reset_counts();
	/* No call is made: only the health checks can take it out. */
	for (k = 0; k < 500; k++) {
		stats(&st);
		if (!st.endpoint[1].in_rotation && st.endpoint[0].checks >= 3)
			break;
		usleep(10000);
	}
	cr_assert_lt(k, 500, "the silent server was never ejected");
	cr_assert_eq(st.endpoint[1].sent, 0);
	cr_assert_geq(st.endpoint[1].checks_failed, 1);
	cr_assert_geq(st.ejections, 1);
	/* The live server passes every check, and checks are PINGs, not
	 * calls of its echo method. */
	cr_assert(st.endpoint[0].in_rotation);
	cr_assert(st.endpoint[0].ready);
	cr_assert_eq(st.endpoint[0].checks_failed, 0);
	cr_assert_gt(st.endpoint[0].rtt_ns, 0);
	cr_assert_eq(zc_rpc_server_method_stats(env[0].srv,
						ZC_RPC_METHOD_ECHO, &ms), 0);
	cr_assert_eq(ms.calls, 0, "health checks made %lu echo calls",
		     (unsigned long)ms.calls);
	/* Calls now all go to the live one. */
	run_calls(50);
	stats(&st);
	cr_assert_eq(atomic_load(&ok), 50);
	cr_assert_eq(st.endpoint[1].sent, 0);
	cr_assert_eq(zc_rpc_balancer_destroy(bal), 0);
	cr_assert_eq(zc_reactor_destroy(br), 0);
	silent_stop(&sil);
	rt_stop(&env[0]);
}

/* ---- wait for ready across endpoints ----------------------------------- */

#define NWAIT 32

/* Per call: how it ended, how often, and when (ms after it was made). */
static atomic_uint ends[NWAIT], status_of[NWAIT];
static atomic_uint_fast64_t end_ms[NWAIT];
static uint64_t made_ns;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_wait_done(void *arg, int status, struct zc_chain *resp)
{
	unsigned i = (unsigned)(uintptr_t)arg;

	if (status == ZC_RPC_OK && !rt_check(resp, 256, 1000 + i))
		atomic_fetch_add(&bad, 1);
	zc_chain_release(resp);
	atomic_store(&status_of[i], (unsigned)status);
	atomic_store(&end_ms[i], (mono_ns() - made_ns) / 1000000);
	atomic_fetch_add(&ends[i], 1);
	atomic_fetch_sub(&inflight, 1);
}

static void wait_calls(unsigned n, uint64_t timeout_us)
{
	struct zc_rpc_call_opts o = { .timeout_us = timeout_us,
				      .wait_for_ready = true };

	made_ns = mono_ns();
	for (unsigned i = 0; i < n; i++) {
		struct zc_chain c = ZC_CHAIN_INIT;

		atomic_store(&ends[i], 0);
		rt_chain(zc_reactor_pool(br), &c, 256, 1000 + i);
		atomic_fetch_add(&inflight, 1);
		cr_assert_eq(zc_rpc_balancer_call(bal, ZC_RPC_METHOD_ECHO, &c,
						  &o, on_wait_done,
						  (void *)(uintptr_t)i), 0);
	}
}

static void wait_balancer(uint16_t p0, uint16_t p1, unsigned max_waiting)
{
	char targets[2][32];
	const char *t[2] = { targets[0], targets[1] };

	snprintf(targets[0], sizeof(targets[0]), "127.0.0.1:%u", p0);
	snprintf(targets[1], sizeof(targets[1]), "127.0.0.1:%u", p1);
	cr_assert_eq(zc_reactor_spawn(NULL, &br), 0);
	cr_assert_eq(zc_rpc_balancer_create(&(struct zc_rpc_balancer_config){
			.reactor = br, .targets = t, .ntargets = 2,
			.policy = ZC_RPC_BALANCE_ROUND_ROBIN,
			.health_interval_ms = 200, .health_timeout_ms = 300,
			.eject_ms = 200, .max_waiting = max_waiting,
			.client = &(struct zc_rpc_client_config){
				.backoff_min_ms = 10, .backoff_max_ms = 200 } },
		     &bal), 0);
	reset_counts();
}

Test(balancer, wait_for_ready_goes_to_the_first_endpoint_up, .timeout = 60)
{
	struct zc_rpc_balancer_stats st;

	/* Two endpoints, both down: server 1 is started after the calls. */
	rt_start(&env[1], &sopts);
	rt_server_stop(&env[1]);
	wait_balancer(rt_free_port(), env[1].port, 0);
	wait_calls(NWAIT, 5000000);
	usleep(800000);
	stats(&st);
	cr_assert_eq(st.waiting, NWAIT, "calls waiting: %u", st.waiting);
	cr_assert_eq(atomic_load(&inflight), NWAIT, "a call ended early");
	rt_server_start(&env[1], &sopts);
	for (int i = 0; i < 1000 && atomic_load(&inflight); i++)
		usleep(10000);
	cr_assert_eq(atomic_load(&inflight), 0, "calls never completed");
	for (unsigned i = 0; i < NWAIT; i++) {
		cr_assert_eq(atomic_load(&ends[i]), 1, "call %u ended %u times",
			     i, atomic_load(&ends[i]));
		cr_assert_eq(atomic_load(&status_of[i]), ZC_RPC_OK,
			     "call %u: %s", i,
			     zc_rpc_status_name((int)atomic_load(&status_of[i])));
		cr_assert_lt(atomic_load(&end_ms[i]), 5000);
	}
	cr_assert_eq(atomic_load(&bad), 0);
	stats(&st);
	cr_assert_eq(st.endpoint[1].ok, NWAIT);
	cr_assert_eq(st.endpoint[0].ok, 0);
	cr_assert_geq(st.waited, NWAIT);
	cr_assert_eq(st.waiting, 0);
	cr_assert_eq(zc_rpc_balancer_destroy(bal), 0);
	cr_assert_eq(zc_reactor_destroy(br), 0);
	rt_stop(&env[1]);
}

Test(balancer, wait_for_ready_ends_at_the_deadline_once, .timeout = 60)
{
	struct zc_chain c = ZC_CHAIN_INIT;
	struct zc_rpc_call_opts o = { .timeout_us = 500000,
				      .wait_for_ready = true };

	/* No server ever, a queue of NWAIT: one more call is refused. */
	wait_balancer(rt_free_port(), rt_free_port(), NWAIT);
	wait_calls(NWAIT, 500000);
	rt_chain(zc_reactor_pool(br), &c, 256, 1);
	cr_assert_eq(zc_rpc_balancer_call(bal, ZC_RPC_METHOD_ECHO, &c, &o,
					  on_wait_done, NULL), -EAGAIN);
	zc_chain_release(&c);
	for (int i = 0; i < 500 && atomic_load(&inflight); i++)
		usleep(10000);
	cr_assert_eq(atomic_load(&inflight), 0, "calls never ended");
	/* Each ended once, at its deadline (liveness bound: 2 s). */
	usleep(100000);
	for (unsigned i = 0; i < NWAIT; i++) {
		cr_assert_eq(atomic_load(&ends[i]), 1, "call %u ended %u times",
			     i, atomic_load(&ends[i]));
		cr_assert_eq(atomic_load(&status_of[i]),
			     ZC_RPC_DEADLINE_EXCEEDED, "call %u: %s", i,
			     zc_rpc_status_name((int)atomic_load(&status_of[i])));
		cr_assert_geq(atomic_load(&end_ms[i]), 499);
		cr_assert_lt(atomic_load(&end_ms[i]), 2000);
	}
	cr_assert_eq(zc_rpc_balancer_destroy(bal), 0);
	cr_assert_eq(zc_reactor_destroy(br), 0);
}
