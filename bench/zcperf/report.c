/* SPDX-License-Identifier: MIT */
/*
 * report.c - result arithmetic and the three output formats.
 */
#include <stdbool.h>
#include <string.h>

#include <zcrpc/zcrpc.h>

#include "report.h"
#include "tls.h"

void zp_counters_add(struct zp_counters *dst, const struct zp_counters *src)
{
	dst->zc_sends += src->zc_sends;
	dst->notifications += src->notifications;
	dst->copied_notifications += src->copied_notifications;
	dst->deferred_frees += src->deferred_frees;
	dst->drains += src->drains;
	dst->kicks += src->kicks;
	dst->rx_enobufs += src->rx_enobufs;
	dst->tcp_busy_us += src->tcp_busy_us;
	dst->tcp_rwnd_limited_us += src->tcp_rwnd_limited_us;
	dst->tcp_sndbuf_limited_us += src->tcp_sndbuf_limited_us;
	dst->tcp_retrans += src->tcp_retrans;
	dst->ktls_conns += src->ktls_conns;
	dst->tlsrec_zcrpc += src->tlsrec_zcrpc;
	dst->tlsrec_openssl += src->tlsrec_openssl;
	dst->rpc_spanning += src->rpc_spanning;
	dst->rpc_shared_buf += src->rpc_shared_buf;
	dst->large_copies += src->large_copies;
	dst->fixed_files += src->fixed_files;
	dst->fixed_fallbacks += src->fixed_fallbacks;
}

/* kTLS used on either side. */
static bool ktls_used(const struct zp_result *r)
{
	return r->client.ctr.ktls_conns + r->server.ctr.ktls_conns > 0;
}

/* Whose record layer the TLS sessions of both sides ran: "zcrpc",
 * "openssl", "mixed" (some of each), or "-" (none counted). */
static const char *tls_records(const struct zp_result *r)
{
	uint64_t z = r->client.ctr.tlsrec_zcrpc + r->server.ctr.tlsrec_zcrpc;
	uint64_t o = r->client.ctr.tlsrec_openssl + r->server.ctr.tlsrec_openssl;

	return z && o ? "mixed" : z ? "zcrpc" : o ? "openssl" : "-";
}

void zp_result_finish(struct zp_result *r)
{
	r->bytes = r->client.bytes_sent + r->client.bytes_received;
	if (r->seconds > 0) {
		r->throughput_gbps = (double)r->bytes * 8 / r->seconds / 1e9;
		r->transactions_per_s = (double)r->transactions / r->seconds;
	}
	r->client.service_demand = zp_service_demand(&r->client.cpu, r->bytes);
	r->server.service_demand = zp_service_demand(&r->server.cpu, r->bytes);
	{
		const struct zp_side *rs = zp_recv_side(r);

		r->recv_cpu_s_per_gib =
			rs->bytes_received
				? rs->threads.total_s /
					  ((double)rs->bytes_received /
					   (double)(1u << 30))
				: 0;
		r->recv_cpu_us_per_call =
			r->transactions ? rs->threads.total_s * 1e6 /
						  (double)r->transactions
					: 0;
	}
	if (r->transactions) {
		r->client.service_demand_tran =
			r->client.cpu.busy_s * 1e6 / (double)r->transactions;
		r->server.service_demand_tran =
			r->server.cpu.busy_s * 1e6 / (double)r->transactions;
	}
}

/* Server RSS per accepted connection (all idle then: -P and --idle),
 * and what each active one added once traffic ran, in bytes. */
static double rss_per_conn(const struct zp_result *r)
{
	const struct zp_side *s = &r->server;
	double n = (double)r->cfg.conns + r->cfg.idle;

	return s->rss_start_kb > s->rss_listen_kb && s->rss_listen_kb
		       ? (double)(s->rss_start_kb - s->rss_listen_kb) * 1024 / n
		       : 0;
}

static double rss_per_active(const struct zp_result *r)
{
	const struct zp_side *s = &r->server;

	return s->rss_warm_kb > s->rss_start_kb
		       ? (double)(s->rss_warm_kb - s->rss_start_kb) * 1024 /
				 r->cfg.conns
		       : 0;
}

static double accept_per_s(const struct zp_result *r)
{
	return r->server.accept_s > 0
		       ? ((double)r->cfg.conns + r->cfg.idle) / r->server.accept_s
		       : 0;
}

/* Open loop: what the schedule asked for, per requested second. */
static double offered_per_s(const struct zp_result *r)
{
	return r->cfg.seconds > 0
		       ? (double)r->client.ol.scheduled / r->cfg.seconds
		       : 0;
}

static bool is_rr(enum zp_test t)
{
	return t == ZP_TCP_RR || t == ZP_RPC_RR;
}

static const char *free_name(int mode)
{
	const char *s = zc_free_mode_name((enum zc_free_mode)mode);

	return s ? s : "?";
}

/* ------------------------------------------------------------------------
 * Human
 */

static void print_config(FILE *f, const struct zp_result *r)
{
	const struct zp_test_cfg *c = &r->cfg;
	char msg[16], req[16], resp[16], rx[16], ring[16], sb[16], cons[16];

	zp_format_size(c->msg_size, msg, sizeof(msg));
	zp_format_size(c->req_size, req, sizeof(req));
	zp_format_size(c->resp_size, resp, sizeof(resp));
	if (c->rxbuf)
		zp_format_size(c->rxbuf, rx, sizeof(rx));
	else
		strcpy(rx, "default");
	if (c->rxring)
		snprintf(ring, sizeof(ring), "%u", c->rxring);
	else
		strcpy(ring, "default");
	if (c->sockbuf)
		zp_format_size(c->sockbuf, sb, sizeof(sb));
	else
		strcpy(sb, "auto");
	if (c->consumer_cpu >= 0)
		snprintf(cons, sizeof(cons), "cpu %d", c->consumer_cpu);
	else
		strcpy(cons, "reactor");

	fprintf(f, "zcperf %s to %s for %.1f s%s%s\n", zp_test_name(c->test),
		r->peer, c->seconds, r->label[0] ? "  - " : "", r->label);
	if (is_rr(c->test))
		fprintf(f, "  request %s  response %s", req, resp);
	else
		fprintf(f, "  message %s", msg);
	fprintf(f, "  conns %u", c->conns);
	if (c->test == ZP_RPC_RR)
		fprintf(f, "  depth %u", c->depth);
	fprintf(f, "  reactors %u  cpus client %s server %s\n", c->reactors,
		r->client.cpus, r->server.cpus);
	fprintf(f, "  send %s  free %s  consumer %s  rxbuf %s  rxring %s  sockbuf %s  poll %u us  cc %s  accept %s\n\n",
		zp_send_name(c->send), free_name(c->free_mode), cons, rx, ring,
		sb, c->poll_us, c->cc[0] ? c->cc : "default",
		zp_accept_name((enum zp_accept)c->accept));
	if (c->tls)
		fprintf(f, "  tls %s  ktls %s  records %s\n\n", zp_tls_cipher(),
			ktls_used(r) ? "yes" : "no", tls_records(r));
}

static void print_counters(FILE *f, const char *who, const struct zp_counters *k)
{
	fprintf(f, "  %-8s %10llu %10llu %10llu %10llu %10llu %10llu\n", who,
		(unsigned long long)k->zc_sends,
		(unsigned long long)k->notifications,
		(unsigned long long)k->copied_notifications,
		(unsigned long long)k->deferred_frees,
		(unsigned long long)k->drains, (unsigned long long)k->kicks);
}

static void print_open_loop(FILE *f, const struct zp_result *r)
{
	const struct bench_ol_counts *o = &r->client.ol;

	fprintf(f, "  open loop  rate %.0f/s %s  offered %.1f/s  achieved %.1f/s\n",
		r->cfg.rate, zp_arrival_name((enum zp_arrival)r->cfg.arrival),
		offered_per_s(r), r->transactions_per_s);
	fprintf(f, "  scheduled %llu = sent %llu + late %llu + failed %llu "
		   "(of which unsent at the deadline %llu)  max send lag %.1f us\n",
		(unsigned long long)o->scheduled, (unsigned long long)o->sent,
		(unsigned long long)o->late, (unsigned long long)o->failed,
		(unsigned long long)o->unsent, (double)o->max_lag_ns / 1e3);
	fprintf(f, "  send lag us         p50 %9.1f  p99 %9.1f  p99.9 %9.1f\n"
		   "  issued->answer us   p50 %9.1f  p99 %9.1f  p99.9 %9.1f\n",
		r->client.ol_lag.p50, r->client.ol_lag.p99, r->client.ol_lag.p999,
		r->client.ol_resp.p50, r->client.ol_resp.p99,
		r->client.ol_resp.p999);
	if (o->late || o->unsent)
		fprintf(f, "  NOTE: the sender fell behind its schedule: %llu "
			   "requests went out over %llu us late, %llu never went "
			   "out; their wait is in the latencies above\n",
			(unsigned long long)o->late,
			(unsigned long long)(ZP_LATE_NS / 1000),
			(unsigned long long)o->unsent);
	fprintf(f, "\n");
}

static void report_human(FILE *f, const struct zp_result *r)
{
	const struct zp_lat *l = &r->lat;
	/* netperf's units: per KiB for streams, per transaction for RR. */
	bool tran = r->transactions && r->cfg.test != ZP_TCP_STREAM &&
		    r->cfg.test != ZP_TCP_MAERTS;

	print_config(f, r);
	fprintf(f, "  Elapsed  Bytes           Throughput  Trans/s       "
		   "CPU util %%       Service demand %s\n",
		tran ? "us/Tr" : "us/KB");
	fprintf(f, "  s                        Gbit/s                    "
		   "client  server   client   server\n");
	fprintf(f, "  %7.2f  %14llu  %10.3f  %12.1f  %6.1f  %6.1f   %6.3f   %6.3f\n\n",
		r->seconds, (unsigned long long)r->bytes, r->throughput_gbps,
		r->transactions_per_s, r->client.cpu.util, r->server.cpu.util,
		tran ? r->client.service_demand_tran : r->client.service_demand,
		tran ? r->server.service_demand_tran : r->server.service_demand);
	fprintf(f, "  latency us  %9s %9s %9s %9s %9s %9s %9s  samples\n",
		"min", "mean", "p50", "p90", "p99", "p99.9", "max");
	fprintf(f, "              %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f  %llu\n\n",
		l->min, l->mean, l->p50, l->p90, l->p99, l->p999, l->max,
		(unsigned long long)l->samples);
	if (r->cfg.rate > 0)
		print_open_loop(f, r);
	if (r->cfg.idle)
		fprintf(f, "  connections  active %u  idle %u  accepted in %.3f s "
			   "(%.0f/s)  server RSS %.0f B per connection, %.0f B "
			   "more per active one\n\n",
			r->cfg.conns, r->cfg.idle, r->server.accept_s,
			accept_per_s(r), rss_per_conn(r), rss_per_active(r));
	fprintf(f, "  counters %10s %10s %10s %10s %10s %10s\n", "zc_sends",
		"notifs", "copied", "deferred", "drains", "kicks");
	print_counters(f, "client", &r->client.ctr);
	print_counters(f, "server", &r->server.ctr);
	if (r->cfg.test == ZP_RPC_RR || r->cfg.test == ZP_RPC_STREAM)
		fprintf(f, "  rpc requests spanning receive buffers %llu, "
			   "beginning in the previous one's buffer %llu (of %llu); "
			   "messages copied out of the ring: client %llu, "
			   "server %llu\n",
			(unsigned long long)r->server.ctr.rpc_spanning,
			(unsigned long long)r->server.ctr.rpc_shared_buf,
			(unsigned long long)r->server.transactions,
			(unsigned long long)r->client.ctr.large_copies,
			(unsigned long long)r->server.ctr.large_copies);
	for (unsigned i = 0; i < r->nendpoints; i++)
		fprintf(f, "  server %-40s calls sent %12llu  answered OK %12llu\n",
			r->endpoint[i].name,
			(unsigned long long)r->endpoint[i].sent,
			(unsigned long long)r->endpoint[i].ok);
	fprintf(f, "\n");
}

/* ------------------------------------------------------------------------
 * JSON: one object per line.  Only numbers and fixed names are printed,
 * except the label, cc and cpu lists, which come from our own tables and
 * the command line (quotes and backslashes are escaped all the same).
 *
 *   test, label, peer, seconds, bytes, throughput_gbps (bytes both ways),
 *   transactions, transactions_per_s,
 *   latency_us {samples, min, mean, p50, p90, p99, p999, max}
 *     (per transaction / call; samples 0 and zeros for STREAM, MAERTS),
 *   cpu_util {client, server} (percent of the side's CPUs, cpu.h),
 *   service_demand_us_per_kb {client, server},
 *   service_demand_us_per_tran {client, server},
 *   counters {zc_sends, notifications, copied_notifications,
 *             deferred_frees, drains, kicks, rx_enobufs, tcp_busy_us,
 *             tcp_rwnd_limited_us, tcp_sndbuf_limited_us, tcp_retrans,
 *             rpc_spanning, rpc_shared_buf (test_rpc.c), large_copies
 *             (messages copied out of the receive ring, rpc/reasm.c),
 *             fixed_files, fixed_fallbacks (connections on a registered
 *             file slot at the end, and those that found none)}
 *             (both sides summed),
 *   endpoints {"0": {peer, sent, ok}, "1": ...} (-H a,b,c: the client's
 *     calls sent to each server, retries included, and answered OK, in
 *     -H's order; {} with one server),
 *   config {msg_size, req_size, resp_size, conns, depth, reactors, send,
 *           free, consumer_cpu, rxbuf, rxring, sockbuf, poll_us, cc,
 *           requested_seconds},
 *   open_loop {rate, arrival, offered_per_s (scheduled / requested
 *              seconds), achieved_per_s (answered / measured seconds),
 *              scheduled, sent, late, failed, unsent, max_send_lag_us,
 *              late_threshold_us, send_lag_us {p50, p90, p99, p999}
 *              (intended -> issued), issued_to_answer_us {p50, p90,
 *              p99, p999}: where the latency went} (openloop.h; all 0 in
 *              closed loop),
 *   connections {active, idle, accept_s, accept_per_s (all -P and
 *              --idle connections over the time from listen to the last
 *              accept), server_rss_listen_kb, rss_per_conn_bytes (server
 *              RSS growth from listen to GO over every connection),
 *              rss_per_active_bytes (growth from GO to warm-up over -P)},
 *   receive_cpu {side, seconds, s_per_gib, us_per_call}: CPU time of
 *              the receiving side's threads (threadcpu.h) per GiB it
 *              received and per transaction,
 *   config {... rate, arrival, stall_ms, idle, accept (the server's
 *           listeners: "multishot" or "oneshot", --accept)},
 *   client, server {cpus, cpu_util, cpu_seconds, process_cpu_seconds,
 *                   service_demand_us_per_kb, bytes_sent, bytes_received,
 *                   transactions, rss_start_kb, rss_warm_kb, rss_end_kb,
 *                   counters {...}, threads_cpu_s (sum),
 *                   thread_cpu_s {reactor0, ..., consumer, worker}}
 */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_counters(FILE *f, const struct zp_counters *k)
{
	fprintf(f, "{\"zc_sends\":%llu,\"notifications\":%llu,"
		   "\"copied_notifications\":%llu,\"deferred_frees\":%llu,"
		   "\"drains\":%llu,\"kicks\":%llu,\"rx_enobufs\":%llu,"
		   "\"tcp_busy_us\":%llu,\"tcp_rwnd_limited_us\":%llu,"
		   "\"tcp_sndbuf_limited_us\":%llu,\"tcp_retrans\":%llu,"
		   "\"rpc_spanning\":%llu,\"rpc_shared_buf\":%llu,"
		   "\"large_copies\":%llu,\"fixed_files\":%llu,"
		   "\"fixed_fallbacks\":%llu}",
		(unsigned long long)k->zc_sends,
		(unsigned long long)k->notifications,
		(unsigned long long)k->copied_notifications,
		(unsigned long long)k->deferred_frees,
		(unsigned long long)k->drains, (unsigned long long)k->kicks,
		(unsigned long long)k->rx_enobufs,
		(unsigned long long)k->tcp_busy_us,
		(unsigned long long)k->tcp_rwnd_limited_us,
		(unsigned long long)k->tcp_sndbuf_limited_us,
		(unsigned long long)k->tcp_retrans,
		(unsigned long long)k->rpc_spanning,
		(unsigned long long)k->rpc_shared_buf,
		(unsigned long long)k->large_copies,
		(unsigned long long)k->fixed_files,
		(unsigned long long)k->fixed_fallbacks);
}

static void json_side(FILE *f, const struct zp_side *s)
{
	unsigned i;

	fprintf(f, "{\"cpus\":");
	json_str(f, s->cpus);
	fprintf(f, ",\"cpu_util\":%.2f,\"cpu_seconds\":%.3f,"
		   "\"process_cpu_seconds\":%.3f,\"service_demand_us_per_kb\":%.4f,"
		   "\"bytes_sent\":%llu,\"bytes_received\":%llu,"
		   "\"transactions\":%llu,\"rss_start_kb\":%llu,"
		   "\"rss_warm_kb\":%llu,"
		   "\"rss_end_kb\":%llu,\"counters\":",
		s->cpu.util, s->cpu.busy_s, s->cpu.proc_s, s->service_demand,
		(unsigned long long)s->bytes_sent,
		(unsigned long long)s->bytes_received,
		(unsigned long long)s->transactions,
		(unsigned long long)s->rss_start_kb,
		(unsigned long long)s->rss_warm_kb,
		(unsigned long long)s->rss_end_kb);
	json_counters(f, &s->ctr);
	fprintf(f, ",\"threads_cpu_s\":%.6f,\"thread_cpu_s\":{",
		s->threads.total_s);
	for (i = 0; i < s->threads.n; i++) {
		if (i)
			fputc(',', f);
		json_str(f, s->threads.name[i]);
		fprintf(f, ":%.6f", s->threads.cpu_s[i]);
	}
	fputs("}}", f);
}

/* "name":{p50, p90, p99, p999} of @l. */
static void json_quantiles(FILE *f, const char *name, const struct zp_lat *l)
{
	fprintf(f, "\"%s\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
		   "\"p999\":%.3f}",
		name, l->p50, l->p90, l->p99, l->p999);
}

static void report_json(FILE *f, const struct zp_result *r)
{
	const struct zp_test_cfg *c = &r->cfg;
	const struct zp_lat *l = &r->lat;
	struct zp_counters total = r->client.ctr;

	zp_counters_add(&total, &r->server.ctr);
	fprintf(f, "{\"test\":\"%s\",\"label\":", zp_test_name(c->test));
	json_str(f, r->label);
	fprintf(f, ",\"peer\":");
	json_str(f, r->peer);
	fprintf(f, ",\"seconds\":%.6f,\"bytes\":%llu,\"throughput_gbps\":%.4f,"
		   "\"transactions\":%llu,\"transactions_per_s\":%.2f,",
		r->seconds, (unsigned long long)r->bytes, r->throughput_gbps,
		(unsigned long long)r->transactions, r->transactions_per_s);
	fprintf(f, "\"latency_us\":{\"samples\":%llu,\"min\":%.3f,\"mean\":%.3f,"
		   "\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
		   "\"max\":%.3f},",
		(unsigned long long)l->samples, l->min, l->mean, l->p50, l->p90,
		l->p99, l->p999, l->max);
	fprintf(f, "\"cpu_util\":{\"client\":%.2f,\"server\":%.2f},"
		   "\"service_demand_us_per_kb\":{\"client\":%.4f,\"server\":%.4f},"
		   "\"service_demand_us_per_tran\":{\"client\":%.4f,\"server\":%.4f},",
		r->client.cpu.util, r->server.cpu.util, r->client.service_demand,
		r->server.service_demand, r->client.service_demand_tran,
		r->server.service_demand_tran);
	fprintf(f, "\"open_loop\":{\"rate\":%.3f,\"arrival\":\"%s\","
		   "\"offered_per_s\":%.2f,\"achieved_per_s\":%.2f,"
		   "\"scheduled\":%llu,\"sent\":%llu,\"late\":%llu,"
		   "\"failed\":%llu,\"unsent\":%llu,\"max_send_lag_us\":%.3f,"
		   "\"late_threshold_us\":%llu,",
		c->rate, zp_arrival_name((enum zp_arrival)c->arrival),
		offered_per_s(r), c->rate > 0 ? r->transactions_per_s : 0,
		(unsigned long long)r->client.ol.scheduled,
		(unsigned long long)r->client.ol.sent,
		(unsigned long long)r->client.ol.late,
		(unsigned long long)r->client.ol.failed,
		(unsigned long long)r->client.ol.unsent,
		(double)r->client.ol.max_lag_ns / 1e3,
		(unsigned long long)(ZP_LATE_NS / 1000));
	json_quantiles(f, "send_lag_us", &r->client.ol_lag);
	fprintf(f, ",");
	json_quantiles(f, "issued_to_answer_us", &r->client.ol_resp);
	fprintf(f, "},");
	fprintf(f, "\"connections\":{\"active\":%u,\"idle\":%u,"
		   "\"accept_s\":%.6f,\"accept_per_s\":%.1f,"
		   "\"server_rss_listen_kb\":%llu,\"rss_per_conn_bytes\":%.1f,"
		   "\"rss_per_active_bytes\":%.1f},",
		c->conns, c->idle, r->server.accept_s, accept_per_s(r),
		(unsigned long long)r->server.rss_listen_kb, rss_per_conn(r),
		rss_per_active(r));
	fprintf(f, "\"receive_cpu\":{\"side\":\"%s\",\"seconds\":%.6f,"
		   "\"s_per_gib\":%.6f,\"us_per_call\":%.4f},",
		zp_recv_side(r) == &r->client ? "client" : "server",
		zp_recv_side(r)->threads.total_s, r->recv_cpu_s_per_gib,
		r->recv_cpu_us_per_call);
	fprintf(f, "\"counters\":");
	json_counters(f, &total);
	fprintf(f, ",\"config\":{\"msg_size\":%u,\"req_size\":%u,"
		   "\"resp_size\":%u,\"conns\":%u,\"depth\":%u,\"reactors\":%u,"
		   "\"send\":\"%s\",\"free\":\"%s\",\"consumer_cpu\":%d,"
		   "\"rxbuf\":%u,\"rxring\":%u,\"sockbuf\":%u,\"poll_us\":%u,"
		   "\"cc\":",
		c->msg_size, c->req_size, c->resp_size, c->conns, c->depth,
		c->reactors, zp_send_name(c->send), free_name(c->free_mode),
		c->consumer_cpu, c->rxbuf, c->rxring, c->sockbuf, c->poll_us);
	json_str(f, c->cc);
	fprintf(f, ",\"tls\":%s,\"cipher\":", c->tls ? "true" : "false");
	json_str(f, c->tls ? zp_tls_cipher() : "-");
	fprintf(f, ",\"ktls\":%s", ktls_used(r) ? "true" : "false");
	fprintf(f, ",\"tls_records\":\"%s\"", tls_records(r));
	fprintf(f, ",\"requested_seconds\":%.3f,\"rate\":%.3f,"
		   "\"arrival\":\"%s\",\"stall_ms\":%u,\"idle\":%u,"
		   "\"accept\":\"%s\"},\"client\":",
		c->seconds, c->rate,
		zp_arrival_name((enum zp_arrival)c->arrival), c->stall_ms,
		c->idle, zp_accept_name((enum zp_accept)c->accept));
	json_side(f, &r->client);
	fprintf(f, ",\"server\":");
	json_side(f, &r->server);
	fprintf(f, ",\"endpoints\":{");
	for (unsigned i = 0; i < r->nendpoints; i++) {
		fprintf(f, "%s\"%u\":{\"peer\":", i ? "," : "", i);
		json_str(f, r->endpoint[i].name);
		fprintf(f, ",\"sent\":%llu,\"ok\":%llu}",
			(unsigned long long)r->endpoint[i].sent,
			(unsigned long long)r->endpoint[i].ok);
	}
	fprintf(f, "}}\n");
}

/* ------------------------------------------------------------------------
 * CSV
 */

static void report_csv(FILE *f, const struct zp_result *r, bool first)
{
	const struct zp_test_cfg *c = &r->cfg;
	const struct zp_lat *l = &r->lat;
	struct zp_counters k = r->client.ctr;
	const char *p;

	zp_counters_add(&k, &r->server.ctr);
	if (first)
		fprintf(f, "test,label,seconds,bytes,throughput_gbps,"
			   "transactions,transactions_per_s,lat_p50_us,"
			   "lat_p90_us,lat_p99_us,lat_p999_us,lat_max_us,"
			   "cpu_util_client,cpu_util_server,sd_client_us_per_kb,"
			   "sd_server_us_per_kb,zc_sends,notifications,"
			   "copied_notifications,deferred_frees,drains,kicks,"
			   "rx_enobufs,msg_size,req_size,resp_size,conns,depth,reactors,"
			   "send,free,consumer_cpu,rxbuf,poll_us,cc,rxring,"
			   "tcp_busy_us,tcp_rwnd_limited_us,tcp_sndbuf_limited_us,"
			   "tcp_retrans,sockbuf,rate,arrival,ol_scheduled,"
			   "ol_sent,ol_late,ol_failed,ol_unsent\n");
	fprintf(f, "%s,", zp_test_name(c->test));
	/* Labels are ours and never hold a comma; keep it that way. */
	for (p = r->label; *p; p++)
		fputc(*p == ',' ? ';' : *p, f);
	fprintf(f, ",%.6f,%llu,%.4f,%llu,%.2f,%.3f,%.3f,%.3f,%.3f,%.3f,"
		   "%.2f,%.2f,%.4f,%.4f,%llu,%llu,%llu,%llu,%llu,%llu,%llu,"
		   "%u,%u,%u,%u,%u,%u,%s,%s,%d,%u,%u,%s,%u,%llu,%llu,%llu,%llu,%u,"
		   "%.3f,%s,%llu,%llu,%llu,%llu,%llu\n",
		r->seconds, (unsigned long long)r->bytes, r->throughput_gbps,
		(unsigned long long)r->transactions, r->transactions_per_s,
		l->p50, l->p90, l->p99, l->p999, l->max, r->client.cpu.util,
		r->server.cpu.util, r->client.service_demand,
		r->server.service_demand, (unsigned long long)k.zc_sends,
		(unsigned long long)k.notifications,
		(unsigned long long)k.copied_notifications,
		(unsigned long long)k.deferred_frees,
		(unsigned long long)k.drains, (unsigned long long)k.kicks,
		(unsigned long long)k.rx_enobufs, c->msg_size, c->req_size, c->resp_size, c->conns, c->depth,
		c->reactors, zp_send_name(c->send), free_name(c->free_mode),
		c->consumer_cpu, c->rxbuf, c->poll_us, c->cc, c->rxring,
		(unsigned long long)k.tcp_busy_us,
		(unsigned long long)k.tcp_rwnd_limited_us,
		(unsigned long long)k.tcp_sndbuf_limited_us,
		(unsigned long long)k.tcp_retrans, c->sockbuf, c->rate,
		zp_arrival_name((enum zp_arrival)c->arrival),
		(unsigned long long)r->client.ol.scheduled,
		(unsigned long long)r->client.ol.sent,
		(unsigned long long)r->client.ol.late,
		(unsigned long long)r->client.ol.failed,
		(unsigned long long)r->client.ol.unsent);
}

void zp_report(FILE *f, enum zp_output out, const struct zp_result *r,
	       bool first)
{
	switch (out) {
	case ZP_OUT_JSON:
		report_json(f, r);
		break;
	case ZP_OUT_CSV:
		report_csv(f, r, first);
		break;
	default:
		report_human(f, r);
		break;
	}
	fflush(f);
}

void zp_report_table(FILE *f, const struct zp_result *r, unsigned n)
{
	unsigned i;

	fprintf(f, "\n%-40s %8s %10s %8s %8s %6s %6s %7s %9s %9s %9s\n",
		"test", "Gbit/s", "trans/s", "p50 us", "p99 us", "cpu c%",
		"cpu s%", "us/KB", "zc_sends", "copied", "deferred");
	for (i = 0; i < n; i++) {
		const struct zp_result *x = &r[i];
		char name[64];

		snprintf(name, sizeof(name), "%s %s", zp_test_name(x->cfg.test),
			 x->label);
		fprintf(f, "%-40.40s %8.2f %10.0f %8.1f %8.1f %6.1f %6.1f %7.3f "
			   "%9llu %9llu %9llu\n",
			name, x->throughput_gbps, x->transactions_per_s, x->lat.p50,
			x->lat.p99, x->client.cpu.util, x->server.cpu.util,
			x->client.service_demand + x->server.service_demand,
			(unsigned long long)(x->client.ctr.zc_sends +
					     x->server.ctr.zc_sends),
			(unsigned long long)(x->client.ctr.copied_notifications +
					     x->server.ctr.copied_notifications),
			(unsigned long long)(x->client.ctr.deferred_frees +
					     x->server.ctr.deferred_frees));
	}
	fprintf(f, "\nus/KB: service demand of both sides together (busy CPU "
		   "per KiB moved).\n");
}
