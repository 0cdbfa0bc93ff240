/* SPDX-License-Identifier: MIT */
/*
 * result.h - what one test run measured, on both sides.
 *
 * Byte accounting (what bench-smoke checks): every side counts payload
 * bytes it handed to the stack to send and bytes the stack delivered to it,
 * from the first byte to the end of the run, after all in-flight data was
 * received (the sender half-closes and the receiver counts up to EOF, or
 * RR/RPC runs wait for their last answers).  So
 *   client.bytes_sent == server.bytes_received,
 *   server.bytes_sent == client.bytes_received,
 *   bytes == client.bytes_sent + client.bytes_received,
 * and for TCP_RR / RPC_RR also bytes == transactions * (req + resp).
 * RPC byte counts are payload only, without frame headers.
 */
#ifndef ZCPERF_RESULT_H
#define ZCPERF_RESULT_H

#include <stdint.h>

#include "cpu.h"
#include "hist.h"
#include "openloop.h"
#include "opts.h"
#include "threadcpu.h"

/* The stack's counters, summed over a side's reactors. */
struct zp_counters {
	uint64_t zc_sends;             /* SEND_ZC submissions */
	uint64_t notifications;        /* IORING_CQE_F_NOTIF completions */
	uint64_t copied_notifications; /* ... that said the kernel copied */
	uint64_t deferred_frees;       /* receive buffers freed off-owner */
	uint64_t drains;               /* buffers taken back by drains */
	uint64_t kicks;                /* owner wake-ups from a full defer list */
	uint64_t rx_enobufs;           /* receives ended by an empty buffer ring */
	/* TCP_STREAM / TCP_MAERTS: the sender's TCP_INFO at the deadline,
	 * summed over its connections (us, except tcp_retrans): time with
	 * data in flight, and the parts of it held back by the receiver's
	 * window or by the send buffer; segments retransmitted. */
	uint64_t tcp_busy_us;
	uint64_t tcp_rwnd_limited_us;
	uint64_t tcp_sndbuf_limited_us;
	uint64_t tcp_retrans;
	uint64_t ktls_conns;           /* connections whose keys went to kTLS */
	uint64_t tlsrec_zcrpc;         /* TLS sessions on zcrpc's records */
	uint64_t tlsrec_openssl;       /* ... and on OpenSSL's */
	/* RPC server, ECHO and SIZED: requests that spanned more than one
	 * receive buffer, and requests that began in the buffer the previous
	 * one ended in (a buffer shared by several RPCs). */
	uint64_t rpc_spanning;
	uint64_t rpc_shared_buf;
	/* Messages whose bytes were copied out of the receive ring into
	 * memory of their own (zc_buf_alloc_large(): large or many-fragment
	 * requests and answers, or the pin cap reached; rpc/reasm.c): the
	 * reactors' pool stats ext_wrapped, as zcperf wraps nothing else. */
	uint64_t large_copies;
	/* Connections on a registered file slot at the end of the run, and
	 * those that found none (zc_reactor_stats() fixed_files,
	 * fixed_fallbacks). */
	uint64_t fixed_files;
	uint64_t fixed_fallbacks;
};

struct zp_side {
	struct zp_cpu_use cpu;
	double service_demand;  /* us of busy CPU per KiB of result bytes */
	double service_demand_tran; /* us of busy CPU per transaction */
	char cpus[64];          /* CPU list counted, "all" when unpinned */
	uint64_t bytes_sent;
	uint64_t bytes_received;
	uint64_t transactions;  /* answered (server) or completed (client) */
	uint64_t rss_start_kb;  /* process RSS when the interval began */
	uint64_t rss_warm_kb;   /* ... once warmed up (zp_warmup_ns() in) */
	uint64_t rss_end_kb;    /* ... and when it ended (same process on
				 * loopback: both sides then agree).  "RSS
				 * stays flat" compares end with warm. */
	struct zp_counters ctr;
	struct bench_ol_counts ol; /* --rate, client side; zeros otherwise */
	/* --rate, client side: each answered call's intended -> issued
	 * (send lag) and issued -> answered, whose sum is its latency. */
	struct zp_lat ol_lag, ol_resp;
	struct zp_thread_use threads; /* reactors, consumer, workers */
	/* Server: RSS when it listened (before any data connection), and
	 * the time from then until every connection (-P and --idle) was
	 * accepted. */
	uint64_t rss_listen_kb;
	double accept_s;
};

struct zp_result {
	char label[48];          /* tour: what this row varies; else "" */
	struct zp_test_cfg cfg;
	char peer[80];           /* "host:port" or "loopback" */
	double seconds;          /* measured interval */
	uint64_t bytes;
	uint64_t transactions;
	double throughput_gbps;
	double transactions_per_s;
	struct zp_lat lat;       /* per transaction/call/message */
	struct zp_side client, server;
	/* The side that receives the test's data (the client for
	 * TCP_MAERTS, else the server): its threads' CPU per GiB it
	 * received and per transaction (threadcpu.h). */
	double recv_cpu_s_per_gib;
	double recv_cpu_us_per_call;
	/* -H a,b,c: the client's sends (retries included) and OK answers per
	 * server, from its balancers; nendpoints 0 with one server. */
	unsigned nendpoints;
	struct {
		char name[80];
		uint64_t sent, ok;
	} endpoint[ZP_HOSTS_MAX];
};

/* The receiving side of @r (see recv_cpu_s_per_gib). */
static inline const struct zp_side *zp_recv_side(const struct zp_result *r)
{
	return r->cfg.test == ZP_TCP_MAERTS ? &r->client : &r->server;
}

/* How far into a run of @seconds each side samples rss_warm_kb: a tenth
 * of it, at least 1 s, at most half of it (pools and socket buffers grow
 * to their working size in the first moments). */
static inline uint64_t zp_warmup_ns(double seconds)
{
	double w = seconds / 10 > 1.0 ? seconds / 10 : 1.0;

	if (w > seconds / 2)
		w = seconds / 2;
	return (uint64_t)(w * 1e9);
}

void zp_counters_add(struct zp_counters *dst, const struct zp_counters *src);
/* Derive bytes, rates and service demands from the side counts. */
void zp_result_finish(struct zp_result *r);

#endif /* ZCPERF_RESULT_H */
