/* SPDX-License-Identifier: MIT */
/*
 * client.c - the client's run of one test (control protocol in ctl.h).
 *
 * The measured interval runs from the server's STARTED to the moment the
 * last data connection closed (raw TCP) or the last call was answered
 * (RPC): every byte counted was delivered inside it.  The client refuses
 * to report a run that ended in connection errors or that holds too few
 * transactions for its percentiles to mean anything.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "engine.h"
#include "side.h"

#define STEP_TIMEOUT_MS 30000
#define CLOSE_TIMEOUT_MS 30000
/* p99.9 needs a thousand samples before it is more than the maximum. */
#define MIN_TRANSACTIONS 1000u

static int expect_line(struct zp_ctl *ctl, char *line, size_t len,
		       const char *word, int timeout_ms)
{
	size_t wl = strlen(word);
	int ret = zp_ctl_recv(ctl, line, len, timeout_ms);

	if (ret < 0) {
		fprintf(stderr, "zcperf: control connection: %s (waiting for "
				"%s)\n", strerror(-ret), word);
		return ret;
	}
	if (!strncmp(line, "ERROR ", 6)) {
		fprintf(stderr, "zcperf: server: %s\n", line + 6);
		return -EREMOTEIO;
	}
	if (strncmp(line, word, wl) || (line[wl] && line[wl] != ' ')) {
		fprintf(stderr, "zcperf: server said '%s', expected %s\n", line,
			word);
		return -EPROTO;
	}
	return 0;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

/* Refuse what cannot be reported honestly; NULL when the run is good. */
static const char *judge(const struct zp_result *r, unsigned errors)
{
	const struct zp_test_cfg *c = &r->cfg;

	if (errors)
		return "connections failed during the run";
	if (r->seconds < ZP_MIN_SECONDS)
		return "the measured interval is shorter than 1 s";
	if ((c->test == ZP_TCP_RR || c->test == ZP_RPC_RR) &&
	    r->transactions < MIN_TRANSACTIONS)
		return "fewer than 1000 transactions: too few for p99.9; run "
		       "longer (-l)";
	if (!r->bytes)
		return "no data moved";
	return NULL;
}

/* Send @msg to every server and wait for @reply from each: 0 or -errno. */
static int all_step(struct zp_ctl *ctl, unsigned nctl, const char *msg,
		    const char *reply, int timeout_ms)
{
	char line[ZP_CTL_LINE_MAX];
	int ret = 0;

	for (unsigned i = 0; i < nctl && !ret; i++)
		ret = zp_ctl_send(&ctl[i], msg);
	for (unsigned i = 0; i < nctl && !ret && reply; i++)
		ret = expect_line(&ctl[i], line, sizeof(line), reply,
				  timeout_ms);
	return ret;
}

/* Several servers: the server side is their sum (bytes, transactions,
 * counters; CPU and RSS figures stay the first server's). */
static void add_server(struct zp_side *sum, const struct zp_side *s)
{
	sum->bytes_sent += s->bytes_sent;
	sum->bytes_received += s->bytes_received;
	sum->transactions += s->transactions;
	zp_counters_add(&sum->ctr, &s->ctr);
}

static int measure(struct zp_ctl *ctl, unsigned nctl,
		   const struct zp_client_args *a,
		   const cpu_set_t *mset, struct zp_engine *e,
		   const struct zp_test_cfg *cfg, struct zp_result *r,
		   struct zp_hist *hist, unsigned *errors)
{
	char line[ZP_CTL_LINE_MAX];
	struct zp_cpu_snap s0, s1;
	unsigned server_errors;
	uint64_t t0, t1;
	int ret;

	ret = all_step(ctl, nctl, "GO", "STARTED", STEP_TIMEOUT_MS);
	if (ret)
		return ret;
	r->client.rss_start_kb = zp_rss_kb();
	zp_cpu_snap(&s0, a->pinned ? mset : NULL);
	t0 = s0.wall_ns;
	zp_engine_start(e);
	zp_sleep_until(t0 + zp_warmup_ns(cfg->seconds));
	r->client.rss_warm_kb = zp_rss_kb();
	zp_sleep_until(t0 + (uint64_t)(cfg->seconds * 1e9));
	zp_engine_stop(e);
	ret = all_step(ctl, nctl, "STOP", NULL, 0);
	if (ret)
		return ret;
	if (zp_engine_wait_closed(e, CLOSE_TIMEOUT_MS)) {
		fprintf(stderr, "zcperf: the run did not end within %d s of "
				"its deadline\n", CLOSE_TIMEOUT_MS / 1000);
		return -ETIMEDOUT;
	}
	zp_cpu_snap(&s1, a->pinned ? mset : NULL);
	r->client.rss_end_kb = zp_rss_kb();
	t1 = s1.wall_ns;
	zp_cpu_diff(&s0, &s1, &r->client.cpu);
	zp_engine_collect(e, &r->client, hist);
	/* RPC connections close now, so the server sees them end. */
	zp_engine_quiesce(e);
	r->seconds = (double)(t1 - t0) / 1e9;
	*errors = atomic_load(&e->conn_failures);
	for (unsigned i = 0; i < nctl; i++) {
		struct zp_side one;

		ret = expect_line(&ctl[i], line, sizeof(line), "RESULT",
				  CLOSE_TIMEOUT_MS + STEP_TIMEOUT_MS);
		if (ret)
			return ret;
		memset(&one, 0, sizeof(one));
		if (zp_ctl_parse_side(line, &one, &server_errors)) {
			fprintf(stderr, "zcperf: bad RESULT from server: %s\n",
				line);
			return -EPROTO;
		}
		if (!i)
			r->server = one;
		else
			add_server(&r->server, &one);
		*errors += server_errors;
	}
	for (unsigned i = 0; nctl > 1 && i < nctl; i++) {
		snprintf(r->endpoint[i].name, sizeof(r->endpoint[i].name),
			 "%s", a->names[i]);
		r->endpoint[i].sent = e->ep_sent[i];
		r->endpoint[i].ok = e->ep_ok[i];
	}
	r->nendpoints = nctl > 1 ? nctl : 0;
	return 0;
}

/* Ask the server of @ctl for the test: its data address (the control
 * peer @peer with the port of its READY) into @data, and how it accepts
 * (enum zp_accept; multishot from servers before --accept) into
 * *@accept.  0 or -errno. */
static int ready_port(struct zp_ctl *ctl, const char *cfgline,
		      const struct sockaddr *peer, socklen_t peerlen,
		      struct sockaddr_storage *data, int *accept)
{
	enum zp_accept acc = ZP_ACCEPT_MULTISHOT;
	char line[ZP_CTL_LINE_MAX], v[16];
	char *end;
	long port;
	int ret;

	ret = zp_ctl_send(ctl, cfgline);
	if (!ret)
		ret = expect_line(ctl, line, sizeof(line), "READY",
				  STEP_TIMEOUT_MS);
	if (ret)
		return ret;
	if (zp_ctl_get(line, "port", v, sizeof(v)) ||
	    (port = strtol(v, &end, 10)) <= 0 || port > 65535 || *end ||
	    (!zp_ctl_get(line, "accept", v, sizeof(v)) &&
	     zp_accept_parse(v, &acc))) {
		fprintf(stderr, "zcperf: bad READY from server: %s\n", line);
		return -EPROTO;
	}
	*accept = (int)acc;
	if (peerlen > sizeof(*data))
		return -EINVAL;
	memset(data, 0, sizeof(*data));
	memcpy(data, peer, peerlen);
	set_port(data, (uint16_t)port);
	return 0;
}

int zp_client_run(struct zp_ctl *ctl, unsigned nctl,
		  const struct zp_client_args *a,
		  const struct zp_test_cfg *cfg, struct zp_result *r)
{
	char line[ZP_CTL_LINE_MAX];
	struct sockaddr_storage data[ZP_HOSTS_MAX];
	struct zp_engine *e;
	cpu_set_t mset;
	struct zp_hist *hist;
	const char *why;
	unsigned errors = 0;
	int ret;

	memset(r, 0, sizeof(*r));
	r->cfg = *cfg;
	snprintf(r->label, sizeof(r->label), "%s", a->label ? a->label : "");
	snprintf(r->peer, sizeof(r->peer), "%s", a->peer_name);
	/* A consumer thread works for this side: its CPU is this side's. */
	mset = a->cpus;
	if (zp_side_consumes(cfg, false))
		CPU_SET(cfg->consumer_cpu, &mset);
	if (a->pinned)
		zp_format_cpulist(&mset, r->client.cpus,
				  sizeof(r->client.cpus));
	else
		snprintf(r->client.cpus, sizeof(r->client.cpus), "all");

	if (!nctl || nctl > ZP_HOSTS_MAX || (nctl > 1 && !a->peers))
		return -EINVAL;
	zp_ctl_fmt_cfg(cfg, a->server_cpus, line, sizeof(line));
	for (unsigned i = 0; i < nctl; i++) {
		int acc;

		ret = nctl > 1 ? ready_port(&ctl[i], line,
					    (const struct sockaddr *)
						    &a->peers[i],
					    a->peerlens[i], &data[i], &acc) :
				 ready_port(ctl, line, a->peer, a->peerlen,
					    &data[0], &acc);
		if (ret)
			return ret;
		/* The report has one config: the first server's. */
		if (!i)
			r->cfg.accept = acc;
		else if (acc != r->cfg.accept)
			fprintf(stderr, "zcperf: server %u accepts %s, the "
					"first %s: the report says %s\n",
				i, zp_accept_name((enum zp_accept)acc),
				zp_accept_name((enum zp_accept)r->cfg.accept),
				zp_accept_name((enum zp_accept)r->cfg.accept));
	}

	hist = malloc(sizeof(*hist));
	if (!hist)
		return -ENOMEM;
	zp_hist_reset(hist);
	ret = zp_engine_create(&e, cfg, false, &a->cpus, a->pinned, a->verbose);
	if (ret)
		goto out_hist;
	if (nctl > 1) {
		e->targets = data;
		e->ntargets = nctl;
		e->lb = a->lb;
	}
	ret = zp_engine_connect(e, (struct sockaddr *)&data[0],
				nctl > 1 ? a->peerlens[0] : a->peerlen);
	if (!ret)
		ret = measure(ctl, nctl, a, &mset, e, cfg, r, hist, &errors);
	zp_engine_destroy(e);
	if (ret)
		goto out_hist;

	r->transactions = r->client.transactions;
	zp_hist_summary(hist, &r->lat);
	zp_result_finish(r);
	why = judge(r, errors);
	if (why) {
		fprintf(stderr, "zcperf: %s %s: refused: %s\n",
			zp_test_name(cfg->test), r->label, why);
		ret = -ERANGE;
	}
out_hist:
	free(hist);
	return ret;
}
