/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_log.c - the log sink (zc_log_set()): a peer that sends
 * garbage is logged at WARN with reason "protocol error" and its address;
 * a refused connect at INFO with the address tried; the sink's level
 * filters; the older zc__log() still reaches the sink; NULL restores the
 * default.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "internal.h"
#include "rpc_test.h"

#define NREC 64

/* Records copied by the sink, which runs on reactor threads. */
static struct {
	pthread_mutex_t lock;
	unsigned n;
	struct {
		enum zc_log_level level;
		char reason[32], peer[ZC_PEER_MAX], msg[256];
	} rec[NREC];
} cap = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void capture(void *arg, const struct zc_log_record *r)
{
	pthread_mutex_lock(&cap.lock);
	if (cap.n < NREC) {
		cap.rec[cap.n].level = r->level;
		snprintf(cap.rec[cap.n].reason, 32, "%s", r->reason);
		snprintf(cap.rec[cap.n].peer, ZC_PEER_MAX, "%s", r->peer);
		snprintf(cap.rec[cap.n].msg, 256, "%s", r->msg);
		cap.n++;
	}
	pthread_mutex_unlock(&cap.lock);
}

/* Index of the first record with @reason (and @peer unless NULL), or -1. */
static int find(const char *reason, const char *peer)
{
	int at = -1;

	pthread_mutex_lock(&cap.lock);
	for (unsigned i = 0; i < cap.n && at < 0; i++)
		if (!strcmp(cap.rec[i].reason, reason) &&
		    (!peer || !strcmp(cap.rec[i].peer, peer)))
			at = (int)i;
	pthread_mutex_unlock(&cap.lock);
	return at;
}

struct want {
	const char *reason, *peer;
};

static bool found(void *arg)
{
	struct want *w = arg;

	return find(w->reason, w->peer) >= 0;
}

static const struct zc_log_sink debug_sink = {
	.fn = capture, .level = ZC_LOG_DEBUG,
};
static const struct zc_log_sink warn_sink = {
	.fn = capture, .level = ZC_LOG_WARN,
};

static struct zc_reactor *r;

static void start(void)
{
	struct zc_reactor_config rc = { .rx_budget = 256 * 1024 };

	cap.n = 0;
	cr_assert_eq(zc_reactor_spawn(&rc, &r), 0);
}

static void stop(void)
{
	zc_log_set(NULL);
	cr_assert_eq(zc_reactor_destroy(r), 0);
}

TestSuite(log, .init = start, .fini = stop);

Test(log, garbage_peer_logged_with_its_address)
{
	struct sockaddr_in me;
	socklen_t sl = sizeof(me);
	struct zc_rpc_server *s;
	struct zc_rpc_server_stats st;
	char peer[64];
	struct want w = { "protocol error", peer };
	int fd, i;

	zc_log_set(&warn_sink);
	cr_assert_eq(zc_rpc_server_create(&(struct zc_rpc_server_config){
		.reactors = &r, .nreactors = 1 }, &s), 0);
	cr_assert_eq(zc_rpc_server_listen_str(s, "127.0.0.1:0"), 0);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&(struct sockaddr_in){
		.sin_family = AF_INET, .sin_port = htons(zc_rpc_server_port(s)),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) },
		sizeof(struct sockaddr_in)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&me, &sl), 0);
	snprintf(peer, sizeof(peer), "127.0.0.1:%u", ntohs(me.sin_port));
	cr_assert_eq(send(fd, "garbage garbage garbage garbage!", 32,
			  MSG_NOSIGNAL), 32);
	cr_assert(rt_wait_for(found, &w, 10), "no protocol error logged");
	i = find("protocol error", peer);
	cr_assert_eq(cap.rec[i].level, ZC_LOG_WARN);
	cr_assert_neq(strstr(cap.rec[i].msg, "server closing connection"), NULL,
		      "%s", cap.rec[i].msg);
	zc_rpc_server_stats(s, &st);
	cr_assert_eq(st.conns_protocol_error, 1);
	close(fd);
	zc_rpc_server_destroy(s);
}

/* A refused connect is INFO: below the default level, seen at DEBUG. */
static void refused(const struct zc_log_sink *sink, bool expect)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	struct zc_rpc_client *cli;
	struct zc_rpc_client_stats st;
	char target[32];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);	/* nothing listens there now */
	snprintf(target, sizeof(target), "127.0.0.1:%u", ntohs(sin.sin_port));
	zc_log_set(sink);
	cr_assert_eq(zc_rpc_client_create(&(struct zc_rpc_client_config){
		.reactor = r, .target = target, .conns = 1 }, &cli), 0);
	for (int i = 0; i < 1000; i++) {
		zc_rpc_client_stats(cli, &st);
		if (st.connect_failures)
			break;
		usleep(2000);
	}
	zc_rpc_client_destroy(cli);
	cr_assert_geq(st.connect_failures, 1);
	if (!expect) {
		cr_assert_eq(find("connect failed", NULL), -1);
		return;
	}
	cr_assert_geq(find("connect failed", target), 0);
	cr_assert_eq(cap.rec[find("connect failed", target)].level,
		     ZC_LOG_INFO);
}

Test(log, refused_connect_at_info)
{
	refused(&debug_sink, true);
}

Test(log, level_filters)
{
	refused(&warn_sink, false);
}

/* The older internal call logs at WARN, reason "log", no peer. */
Test(log, zc__log_reaches_the_sink)
{
	zc_log_set(&warn_sink);
	zc__log("legacy %d", 42);
	cr_assert_eq(cap.n, 1);
	cr_assert_eq(cap.rec[0].level, ZC_LOG_WARN);
	cr_assert_str_eq(cap.rec[0].reason, "log");
	cr_assert_str_eq(cap.rec[0].peer, "");
	cr_assert_str_eq(cap.rec[0].msg, "legacy 42");
	zc_log_set(NULL);
	zc__log("to stderr");
	cr_assert_eq(cap.n, 1, "NULL restores the default sink");
	cr_assert_str_eq(zc_log_level_name(ZC_LOG_DEBUG), "debug");
	cr_assert_str_eq(zc_log_level_name((enum zc_log_level)9), "?");
}
