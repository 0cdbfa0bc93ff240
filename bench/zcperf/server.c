/* SPDX-License-Identifier: MIT */
/*
 * server.c - zcperf -s: the netserver side of the control protocol.
 *
 * One control connection at a time, one test at a time: each test gets
 * fresh reactors configured as the client asked (send mode, free mode,
 * receive buffer size, polling, congestion control, CPUs), a data port of
 * its own, and is torn down before the next one, so no state leaks from
 * one measurement into the next.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cpu.h"
#include "engine.h"
#include "side.h"

/* How long the server waits for each step of the client. */
#define STEP_TIMEOUT_MS 30000
#define ACCEPT_TIMEOUT_MS 5000
#define CLOSE_TIMEOUT_MS 30000
#define POLL_SLICE_MS 500

void zp_server_shutdown(struct zp_server *s)
{
	atomic_store(&s->stop, true);
	/* Wakes the blocking accept() with EINVAL. */
	shutdown(s->lfd, SHUT_RDWR);
}

/* Read a line in slices, so that a shutdown is seen within a slice. */
static int recv_line(struct zp_server *s, struct zp_ctl *ctl, char *buf,
		     size_t len, long timeout_ms)
{
	for (;;) {
		int ret = zp_ctl_recv(ctl, buf, len, POLL_SLICE_MS);

		if (ret != -ETIMEDOUT)
			return ret;
		if (atomic_load(&s->stop))
			return -ESHUTDOWN;
		timeout_ms -= POLL_SLICE_MS;
		if (timeout_ms <= 0)
			return -ETIMEDOUT;
	}
}

static int expect(struct zp_server *s, struct zp_ctl *ctl, const char *word,
		  long timeout_ms)
{
	char line[ZP_CTL_LINE_MAX];
	int ret = recv_line(s, ctl, line, sizeof(line), timeout_ms);

	if (ret < 0)
		return ret;
	return strcmp(line, word) ? -EPROTO : 0;
}

static void send_error(struct zp_ctl *ctl, const char *why)
{
	char line[ZP_CTL_LINE_MAX];

	snprintf(line, sizeof(line), "ERROR %.900s", why);
	zp_ctl_send(ctl, line);
}

static void measured_set(const struct zp_test_cfg *cfg, const cpu_set_t *cpus,
			 bool pinned, cpu_set_t *out, char *name, size_t len)
{
	if (!pinned) {
		snprintf(name, len, "all");
		return;
	}
	*out = *cpus;
	/* The consumer works for this side: its CPU is this side's cost. */
	if (zp_side_consumes(cfg, true))
		CPU_SET(cfg->consumer_cpu, out);
	zp_format_cpulist(out, name, len);
}

static int serve_test(struct zp_server *s, struct zp_ctl *ctl,
		      const char *cfgline)
{
	struct zp_test_cfg cfg;
	struct sockaddr_storage ss;
	struct zp_cpu_snap a, b;
	struct zp_engine *e;
	struct zp_side side;
	cpu_set_t cpus, mset;
	char line[ZP_CTL_LINE_MAX];
	const char *why;
	socklen_t sslen;
	uint64_t t_listen;
	bool cpus_given, pinned;
	int ret, port;

	ret = zp_ctl_parse_cfg(cfgline, &cfg, &cpus, &cpus_given, &why);
	if (ret) {
		send_error(ctl, why);
		return 0;
	}
	/* Ours, not the client's: it reads it back from READY. */
	cfg.accept = s->accept;
	if (!cpus_given)
		cpus = s->cpus;
	pinned = cpus_given || s->pinned;
	ret = zp_engine_create(&e, &cfg, true, &cpus, pinned, s->verbose);
	if (ret) {
		snprintf(line, sizeof(line), "server setup: %s", strerror(-ret));
		send_error(ctl, line);
		return 0;
	}
	ret = zp_ctl_local_addr(ctl->fd, &ss, &sslen);
	port = ret ? ret : zp_engine_listen(e, (struct sockaddr *)&ss, sslen);
	if (port < 0) {
		snprintf(line, sizeof(line), "listen: %s", strerror(-port));
		send_error(ctl, line);
		zp_engine_destroy(e);
		return 0;
	}
	/* The data port: another client may reach this test's RPC server
	 * there while it runs (README, "zcperf"). */
	if (s->verbose)
		fprintf(stderr, "zcperf: server: data port %d\n", port);
	memset(&side, 0, sizeof(side));
	side.rss_listen_kb = zp_rss_kb();
	t_listen = zp_now_ns();
	snprintf(line, sizeof(line), "READY port=%d accept=%s", port,
		 zp_accept_name((enum zp_accept)cfg.accept));
	ret = zp_ctl_send(ctl, line);
	if (!ret)
		ret = expect(s, ctl, "GO", STEP_TIMEOUT_MS);
	if (ret)
		goto out;
	/* --idle: a millisecond more per connection on a loaded machine. */
	if (zp_engine_wait_accepted(e, ACCEPT_TIMEOUT_MS + cfg.idle)) {
		send_error(ctl, "the data connections did not all arrive");
		ret = -ETIMEDOUT;
		goto out;
	}
	side.accept_s = (double)(zp_now_ns() - t_listen) / 1e9;
	CPU_ZERO(&mset);
	measured_set(&cfg, &cpus, pinned, &mset, side.cpus, sizeof(side.cpus));
	side.rss_start_kb = zp_rss_kb();
	zp_cpu_snap(&a, pinned ? &mset : NULL);
	zp_engine_start(e);
	ret = zp_ctl_send(ctl, "STARTED");
	if (!ret) {
		long warm_ms = (long)(zp_warmup_ns(cfg.seconds) / 1000000);

		/* Only the client's STOP may come; until the warm-up mark,
		 * its silence is what we wait for. */
		ret = expect(s, ctl, "STOP", warm_ms);
		side.rss_warm_kb = zp_rss_kb();
		if (ret == -ETIMEDOUT)
			ret = expect(s, ctl, "STOP",
				     (long)(cfg.seconds * 1000) - warm_ms +
					     STEP_TIMEOUT_MS);
	}
	if (ret)
		goto out;
	zp_engine_stop(e);
	if (zp_engine_wait_closed(e, CLOSE_TIMEOUT_MS))
		fprintf(stderr, "zcperf: server: connections still open after "
				"%d s, aborting them\n", CLOSE_TIMEOUT_MS / 1000);
	zp_cpu_snap(&b, pinned ? &mset : NULL);
	side.rss_end_kb = zp_rss_kb();
	zp_cpu_diff(&a, &b, &side.cpu);
	zp_engine_collect(e, &side, NULL);
	zp_ctl_fmt_side(&side, atomic_load(&e->conn_failures), line,
			sizeof(line));
	ret = zp_ctl_send(ctl, line);
out:
	zp_engine_destroy(e);
	return ret;
}

static void serve_conn(struct zp_server *s, int fd)
{
	struct zp_ctl ctl;
	char line[ZP_CTL_LINE_MAX];
	int one = 1;

	zp_ctl_init(&ctl, fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (;;) {
		/* An idle client may think for a while between tests. */
		int ret = recv_line(s, &ctl, line, sizeof(line), 3600 * 1000L);

		if (ret < 0)
			break;
		if (s->verbose)
			fprintf(stderr, "zcperf: server: %s\n", line);
		if (serve_test(s, &ctl, line))
			break;
	}
	zp_ctl_close(&ctl);
}

int zp_server_serve(struct zp_server *s)
{
	while (!atomic_load(&s->stop)) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return atomic_load(&s->stop) ? 0 : -errno;
		}
		serve_conn(s, fd);
	}
	return 0;
}
