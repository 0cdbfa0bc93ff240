/* SPDX-License-Identifier: MIT */
/*
 * rpc/client.h - the client's private structures, shared by client.c (the
 * reactor side: connections, frames, completions) and client_api.c (calls
 * from any thread, the tick thread, setup and teardown).
 */
#ifndef ZCRPC_RPC_CLIENT_H
#define ZCRPC_RPC_CLIENT_H

#include <pthread.h>
#include <sys/socket.h>

#include "hist.h"
#include "internal.h"

/* Messages from other threads to the client's reactor. */
enum { MSG_SUBMIT, MSG_CANCEL, MSG_PING };

struct zc__cmsg {
	struct zc__inode node;
	uint8_t kind;
};

enum pstate { P_NEW, P_WAITING, P_SENT, P_DONE };

struct zc__cconn;

/* A zc_rpc_ping() in flight: owned by the client from the call on, freed
 * after its callback. */
struct zc__ping {
	struct zc__cmsg msg;		/* MSG_PING, through the inbox */
	struct zc__ping *next;		/* client's list (reactor thread) */
	struct zc_rpc_client *cli;
	struct zc__cconn *cc;		/* sent on; NULL: waiting for one */
	uint64_t seq;			/* the PING's 8 bytes */
	uint64_t start_ns, deadline;
	zc_rpc_ping_fn done;
	void *arg;
};

struct zc_rpc_pending {
	struct zc__cmsg submit;
	struct zc__cmsg cancel;
	atomic_uint refs;		/* client's + caller's handle */
	atomic_bool cancel_sent;	/* zc_rpc_cancel() called once */
	struct zc_rpc_client *cli;
	uint32_t method;
	uint64_t deadline;		/* CLOCK_MONOTONIC ns, 0: none */
	uint64_t start_ns;		/* zc_rpc_call() */
	zc_rpc_done_fn done;
	void *arg;
	size_t req_bytes;		/* charged to tx_budget */
	bool wait_for_ready;		/* wait out (re)connects */
	/* reactor thread only from here */
	struct zc_chain req;		/* until queued */
	enum pstate state;
	bool cancel_early;
	struct zc__cconn *cc;
	uint64_t id;
	struct zc__txmsg *tm;		/* our request while still queued */
	struct zc_chain resp;
	struct zc__reasm ra;		/* reassembly into resp */
	uint32_t resp_len, got;
	struct zc_rpc_pending *wnext;	/* waiting list */
	uint32_t heap_idx;		/* position + 1 in the deadline heap */
};

/* Field order is for the cache: with 1,000 active connections each
 * answer lands on a cold one, so what a call reads (flags, id map, idle
 * and dirty links, the receive chain, the send queue) comes first. */
struct zc__cconn {
	struct zc_rpc_client *cli;
	struct zc_conn *conn;
	struct zc__map calls;		/* id -> pending or discard mark */
	uint32_t ninflight;
	bool ready, goaway, broken;
	/* Frames queued this batch: on cli->dirty, flushed at its end. */
	bool dirty;
	/* On cli's idle list: ready, open, no call in flight (pick()). */
	bool idle;
	struct zc__cconn *dirty_next;
	struct zc__cconn *idle_next, *idle_prev;
	struct zc_frame_limits lim;
	struct zc_hello peer;
	struct zc_chain rx;
	struct zc__tx tx;
	struct zc__cconn *next, *prev;	/* client's list of all conns */
	int slot;			/* -1 once replaced (goaway) */
	int lost_err;			/* set when it closed: -errno */
	uint64_t hello_deadline;	/* ns, while not ready */
};

struct zc__slot {
	struct zc__cconn *cc;		/* connecting or ready, or NULL */
	uint64_t retry_at;		/* ns; 0: no reconnect planned */
	unsigned failures;		/* consecutive, for the backoff */
	unsigned addr_idx;		/* candidate of the next connect */
	unsigned tried;			/* candidates failed this round */
};

struct zc_rpc_client {
	struct zc_rpc_client_config cfg;
	/* The peer's candidates, in the order to try them (resolved at
	 * create time, on the caller's thread). */
	struct zc_addr addrs[ZC_ADDR_MAX];
	unsigned naddrs;
	struct zc_reactor *r;
	struct zc__inbox inbox;
	struct zc__slot *slots;
	/* Connections with frames queued and not flushed
	 * (zc__cconn_dirty()). */
	struct zc__cconn *dirty;
	/* Connections with no call in flight, in the order they became
	 * idle: pick() takes the oldest without a walk over thousands. */
	struct zc__cconn *idle_head, *idle_tail;
	struct zc__cconn *all;
	struct zc__tx_stage stage;		/* every connection's frames */
	struct zc_rpc_pending *whead, *wtail;	/* waiting for a conn */
	struct zc__ping *pings;			/* in flight or waiting */
	uint64_t ping_seq;
	/* Called on the reactor thread each time a connection becomes
	 * ready (after its HELLO): the balancer's wait-for-ready. */
	void (*on_ready)(void *arg);
	void *on_ready_arg;
	struct zc_rpc_pending **heap;		/* by deadline */
	uint32_t nheap, heap_cap;
	uint64_t next_id;
	unsigned rr;
	uint64_t rng;
	bool closing_r;				/* reactor's view */
	uint64_t rx_ns;				/* delivery being parsed, 0 */
	struct {
		int err;			/* -errno, 0: none yet */
		unsigned addr;			/* index in addrs */
	} last_fail;				/* last connect failure */
	/* tick thread */
	pthread_t ticker;
	atomic_bool stop, need_tick, tick_queued;
	pthread_mutex_t tick_lock;	/* sleeps of the tick thread */
	pthread_cond_t tick_cond;
	struct zc_work tick_work;
	/* any thread */
	atomic_bool closing;
	zc__ctr conns_live;
	zc__ctr pings_live;			/* zc_rpc_ping() not finished */
	/* Connections that take calls: ready, no GOAWAY received. */
	zc__ctr conns_usable;
	/* stats */
	zc__ctr calls, inflight, tx_bytes, rx_bytes, tx_budget_refusals,
		connects, connect_failures, conns_open, goaways,
		protocol_errors, tx_pending;
	zc__ctr by_status[ZC_RPC_NSTATUS];
	struct zc__hist lat;			/* written by the reactor */
};

/* Reactor thread. */
void zc__client_inbox(struct zc__inbox *ib, struct zc__inode *list);
void zc__client_tick(struct zc_work *w);
void zc__client_start(struct zc_rpc_client *cli);
void zc__client_shutdown(struct zc_rpc_client *cli);
void zc__pending_put(struct zc_rpc_pending *p);
/* @cc has frames queued: the end of the batch (or of the delivery being
 * handled) flushes it. */
void zc__cconn_dirty(struct zc__cconn *cc);

/* client_ping.c, reactor thread: a ping from the inbox; a connection
 * became ready (send the waiting pings); a PONG's payload; a connection
 * closed (its pings fail); expiry (true while pings remain); closing. */
void zc__ping_start(struct zc_rpc_client *cli, struct zc__ping *p);
void zc__ping_ready(struct zc__cconn *cc);
void zc__ping_pong(struct zc__cconn *cc, const uint8_t *payload);
void zc__ping_lost(struct zc__cconn *cc);
bool zc__ping_tick(struct zc_rpc_client *cli, uint64_t now);
void zc__ping_shutdown(struct zc_rpc_client *cli);

/* zc_rpc_client_create() with a hook run on the reactor thread whenever a
 * connection becomes ready (set before the first connect, so none is
 * missed).  @on_ready may be NULL. */
int zc__client_create(const struct zc_rpc_client_config *cfg,
		      void (*on_ready)(void *arg), void *arg,
		      struct zc_rpc_client **out);
/* Any thread: a connection is ready and not going away. */
bool zc__client_usable(const struct zc_rpc_client *cli);

/* client_error.c: why a call ended (zc_rpc_call_error()).  Reactor
 * thread: fill @e at completion, publish it around the done callback. */
void zc__call_why(const struct zc_rpc_client *cli,
		  const struct zc_rpc_pending *p, int status,
		  struct zc_rpc_error *e);
const struct zc_rpc_error *zc__call_error_enter(const struct zc_rpc_error *e);
void zc__call_error_leave(const struct zc_rpc_error *prev);
/* The caller's thread of zc_rpc_call_sync(): keep @e as its answer. */
void zc__call_error_keep(const struct zc_rpc_error *e);

#endif /* ZCRPC_RPC_CLIENT_H */
