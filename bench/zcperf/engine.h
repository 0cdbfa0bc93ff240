/* SPDX-License-Identifier: MIT */
/*
 * engine.h - one side of a test on the stack: its reactors, connections,
 * payload templates, optional consumer thread, and the bookkeeping that
 * tells the main thread when the run is over.
 *
 * Threads: the main thread (control connection, clock) creates the engine,
 * then drives it only through zc_reactor_call(), so every field of a
 * zp_rctx and every zp_conn is touched by its reactor thread alone.  The
 * main thread reads totals after the reactors went quiet, through
 * zc_reactor_call() again (which orders the memory).  Only the latches and
 * the error counter are shared, and they are atomic or locked.
 *
 * Payload: a side sends clones of views of a template chain of pool
 * buffers it wrote once at setup and never writes again, so sending the
 * same bytes many times over, zero-copy, is safe (alloc.h "Who may
 * write"): netperf's send ring, without a ring.
 */
#ifndef ZCPERF_ENGINE_H
#define ZCPERF_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <zcrpc/zcrpc.h>

#include "consumer.h"
#include "hist.h"
#include "latch.h"
#include "openloop.h"
#include "opts.h"
#include "result.h"
#include "threadcpu.h"

struct zp_engine;
struct zp_rctx;
struct zp_consumer;

/* One data connection (reactor thread only). */
struct zp_conn {
	struct zp_rctx *rx;
	struct zc_conn *c;
	struct zp_conn *prev, *next; /* rx->conns */
	bool connected;
	bool stopping;               /* the deadline passed: wind down */
	uint64_t got;                /* RR: bytes of the awaited message */
	uint64_t t_start;            /* RR: when the request went out */
	unsigned queued;             /* STREAM: sends not yet done */
	/* TCP_RR --rate: the requests outstanding, oldest first, as
	 * (intended, issued) pairs in a ring of -d; NULL in closed loop. */
	uint64_t *ol_fifo;
	unsigned ol_head, ol_n;
};

/* Per reactor, reactor thread only (see the Threads note). */
struct zp_rctx {
	struct zp_engine *eng;
	struct zc_reactor *r;
	struct zc_listener *lis;
	struct zp_conn *conns;
	struct zc_chain tmpl;     /* what this side sends, see prepare */
	uint32_t tmpl_len;
	struct zp_hist *hist;     /* latency of this reactor's transactions */
	uint64_t bytes_sent;
	uint64_t bytes_received;
	uint64_t transactions;
	struct zp_counters tcp;   /* its tcp_* fields (zp_note_tcp_info())
				   * and rpc_* fields (test_rpc.c) only */
	const struct zc_buf *shape_buf; /* RPC server: where the last */
	uint32_t shape_end;             /* request ended (test_rpc.c) */
	struct zp_item_cache items; /* hand-off nodes to the consumer */
	struct zp_olq ol;         /* --rate (client): ring NULL otherwise */
	struct zp_conn *ol_cursor; /* TCP_RR --rate: next conn to try */
};

/*
 * A test family: the callbacks of one kind of traffic.  Both sides of
 * every test use the same family; each callback checks eng->server.
 * Everything here runs on reactor threads.
 */
struct zp_family {
	/* Connection callbacks, ud = struct zp_conn. */
	const struct zc_conn_ops *ops;
	/* Fill rx->tmpl with the payload this side sends.  0 or -errno. */
	int (*prepare)(struct zp_rctx *rx);
	/* The measured interval begins: start traffic on @pc. */
	void (*start)(struct zp_conn *pc);
	/* The deadline passed: stop adding work, close when done. */
	void (*stop)(struct zp_conn *pc);
};

extern const struct zp_family zp_stream_family; /* TCP_STREAM, TCP_MAERTS */
extern const struct zp_family zp_rr_family;     /* TCP_RR */

/*
 * RPC_RR and RPC_STREAM run zcrpc's server and client on the engine's
 * reactors instead of raw connections (test_rpc.c); the engine calls
 * these where it would use the family for raw TCP.
 */
struct zp_rpc;
/* Allocate / free e->rpc (zp_rpc_free accepts e->rpc == NULL). */
int zp_rpc_create(struct zp_engine *e);
void zp_rpc_free(struct zp_engine *e);
int zp_rpc_prepare(struct zp_rctx *rx);
int zp_rpc_listen(struct zp_engine *e, const struct sockaddr *addr,
		  socklen_t len);
unsigned zp_rpc_accepted(struct zp_engine *e);
int zp_rpc_connect(struct zp_engine *e, const struct sockaddr *addr,
		   socklen_t len);
void zp_rpc_start(struct zp_engine *e);
void zp_rpc_stop(struct zp_engine *e);
int zp_rpc_wait_closed(struct zp_engine *e, unsigned timeout_ms);
void zp_rpc_collect(struct zp_engine *e, struct zp_side *side);
/* Close the client's or server's connections (before the reactors go). */
void zp_rpc_quiesce(struct zp_engine *e);

static inline bool zp_test_is_rpc(enum zp_test t)
{
	return t == ZP_RPC_RR || t == ZP_RPC_STREAM;
}

/* Does this side consume on --consumer-cpu (a consumer thread on a side
 * that receives the test's TCP data; the RPC server's handlers run on a
 * worker thread there)? */
static inline bool zp_side_consumes(const struct zp_test_cfg *cfg,
				    bool server)
{
	if (cfg->consumer_cpu < 0)
		return false;
	if (zp_test_is_rpc(cfg->test))
		return server;
	if (cfg->test == ZP_TCP_STREAM)
		return server;
	if (cfg->test == ZP_TCP_MAERTS)
		return !server;
	return true;
}

struct zp_engine {
	struct zp_test_cfg cfg;
	const struct zp_family *fam;
	bool server;
	bool verbose;
	unsigned n;               /* reactors */
	struct zp_rctx *rx;
	cpu_set_t cpus;
	bool pinned;
	struct zp_rpc *rpc;           /* RPC tests only (test_rpc.c) */
	struct zp_consumer *consumer; /* NULL unless --consumer-cpu */
	struct zp_latch connected;    /* connects done (ok or failed) / accepts */
	struct zp_latch closed;       /* on_close delivered / RPC slots done */
	unsigned expect_closed;       /* client: what `closed` must reach */
	atomic_uint conn_failures;    /* failed connects, error closes, calls */
	atomic_uint created;          /* zp_conns made (connects + accepts) */
	struct zp_tcpu tcpu;          /* this side's threads' CPU clocks */
	uint64_t ol_end_ns;           /* --rate, client: the schedule's end */
	/* --stall: when the server may stall (UINT64_MAX until the start;
	 * its reactors read it), and whether it did */
	_Atomic uint64_t stall_at_ns;
	atomic_bool stalled;
	/* Client of several servers (-H a,b,c, RPC tests): their data
	 * addresses, set before zp_engine_connect(), and the balancer's
	 * policy; then, after zp_engine_collect(), the sends and OK answers
	 * per server, summed over the reactors' balancers. */
	const struct sockaddr_storage *targets;
	unsigned ntargets;
	int lb;
	uint64_t ep_sent[ZP_HOSTS_MAX], ep_ok[ZP_HOSTS_MAX];
};

static inline bool zp_open_loop(const struct zp_engine *e)
{
	return !e->server && e->cfg.rate > 0;
}

/* Server, reactor thread: sleep --stall ms if this is the first request
 * past the middle of the run (at most once per run, whichever reactor). */
void zp_maybe_stall(struct zp_engine *e);

/* A reactor configuration from a test's: buffer, ring, socket-buffer,
 * free, poll, send and congestion settings, the rest zero (defaults).
 * rc->congestion borrows @cfg->cc until the reactor is created. */
void zp_reactor_config(const struct zp_test_cfg *cfg,
		       struct zc_reactor_config *rc);

/*
 * Create @cfg->reactors reactors, pinned round-robin over @cpus when
 * @pinned, and prepare the family's templates on each.  Returns 0 or
 * -errno (a message is printed); on error nothing is left running.
 */
int zp_engine_create(struct zp_engine **out, const struct zp_test_cfg *cfg,
		     bool server, const cpu_set_t *cpus, bool pinned,
		     bool verbose);

/* zc_listen() flags of a server's listeners: SO_REUSEPORT, and
 * ZC_LISTEN_ONESHOT_ACCEPT with --accept oneshot. */
unsigned zp_listen_flags(const struct zp_test_cfg *cfg);

/* Server: listen on @addr (port 0: any) on every reactor (SO_REUSEPORT).
 * Returns the bound port (> 0) or -errno. */
int zp_engine_listen(struct zp_engine *e, const struct sockaddr *addr,
		     socklen_t len);

/* Client: open cfg.conns connections round-robin over the reactors and
 * wait for them.  Returns 0 or -errno (all are closed again on error). */
int zp_engine_connect(struct zp_engine *e, const struct sockaddr *addr,
		      socklen_t len);

/* Server: wait until cfg.conns connections were accepted.  0 or
 * -ETIMEDOUT. */
int zp_engine_wait_accepted(struct zp_engine *e, unsigned timeout_ms);

/* Start / stop the traffic on every connection. */
void zp_engine_start(struct zp_engine *e);
void zp_engine_stop(struct zp_engine *e);

/* Wait for the end of the traffic: every connection closed (raw TCP,
 * RPC server) or every call answered (RPC client).  0 or -ETIMEDOUT. */
int zp_engine_wait_closed(struct zp_engine *e, unsigned timeout_ms);

/* After collecting: close what the traffic left open (RPC connections),
 * so that the peer sees its connections end. */
void zp_engine_quiesce(struct zp_engine *e);

/*
 * Sum the side's counts, latency histogram and stack counters into @side
 * and @hist (may be NULL).  Call after zp_engine_wait_closed(); waits for
 * the consumer to release what it still holds first.
 */
void zp_engine_collect(struct zp_engine *e, struct zp_side *side,
		       struct zp_hist *hist);

/* Abort what is left and destroy everything. */
void zp_engine_destroy(struct zp_engine *e);

/* ---- helpers for the families (reactor thread) ---- */

/* Queue a clone of the template on @pc, with zc_conn_send()'s optional
 * @done; 0 or zc_conn_send()'s error (then @done never runs). */
int zp_send_tmpl(struct zp_conn *pc, void (*done)(void *arg, int err),
		 void *arg);
/* Put @pc on @rx's list of connections. */
void zp_conn_link(struct zp_rctx *rx, struct zp_conn *pc);
/* Count received bytes and let go of @data (consumer or at once). */
void zp_consume(struct zp_conn *pc, struct zc_chain *data);
/* Add @pc's TCP_INFO (sender's view: busy, window- and send-buffer-
 * limited time, retransmits) to @pc->rx->tcp. */
void zp_note_tcp_info(struct zp_conn *pc);
/* Fill rx->tmpl with @len bytes of fresh pool buffers. */
int zp_tmpl_make(struct zp_rctx *rx, uint32_t len);
/* Common callbacks. */
void zp_on_connect(struct zc_conn *c, void *ud);
void zp_on_eof(struct zc_conn *c, void *ud);
void zp_on_close(struct zc_conn *c, int err, void *ud);

#endif /* ZCPERF_ENGINE_H */
