/* SPDX-License-Identifier: MIT */
/*
 * rpc/server.h - the server's private structures, shared by server.c (the
 * connection and call state machine on the reactors) and server_api.c
 * (setup, workers, drain, stats).
 */
#ifndef ZCRPC_RPC_SERVER_H
#define ZCRPC_RPC_SERVER_H

#include <pthread.h>

#include "hist.h"
#include "internal.h"

struct zc__method {
	uint32_t id;
	char name[32];
	enum zc_rpc_mode mode;
	uint32_t max_inflight;	/* 0: none of its own */
	zc_rpc_handler_fn fn;
	void *arg;
	/* stats */
	zc__ctr calls, rx_bytes, tx_bytes, inflight;
	zc__ctr by_status[ZC_RPC_NSTATUS];
	struct zc__hist *lat;		/* one per reactor (its writer) */
};

struct zc__sconn;

/* Per reactor: its listener, its connections, the inbox of answers made
 * on other threads. */
struct zc__srctx {
	struct zc_rpc_server *s;
	struct zc_reactor *r;
	struct zc_listener *l;
	struct zc__inbox inbox;
	struct zc__sconn *conns;	/* doubly linked via next/prev */
	/* Connections with answers queued during the current batch: flushed
	 * once at its end, so replies made together leave in one send. */
	struct zc__sconn *flush_list;
	unsigned in_batch;
	/* Connections whose next request waits for max_inflight_bytes room;
	 * resume_work parses them again once calls have finished. */
	struct zc__sconn *budget_waiters;
	atomic_uint nwaiting;
	atomic_bool resume_queued;
	struct zc_work resume_work;
};

struct zc__sconn {
	struct zc__sconn *next, *prev;
	struct zc__sconn *flush_next;
	bool flush_queued;
	struct zc__srctx *rc;
	struct zc_conn *conn;		/* NULL after on_close */
	struct zc__tx tx;
	struct zc_chain rx;		/* bytes not parsed yet */
	struct zc_frame_limits lim;
	struct zc_hello peer;
	struct zc__map calls;		/* id -> call or the discard mark */
	uint32_t ncalls;		/* calls (not discard marks) in map */
	uint64_t last_id;		/* highest request id seen */
	bool hello, draining, broken, parsing, paused;
	bool budget_wait;		/* on rc->budget_waiters */
	uint64_t parse_ns;		/* start of the parse pass, for latency */
	struct zc__sconn *wait_next;
	unsigned refs;			/* conn + calls not yet answered */
};

enum call_state { CALL_REASM, CALL_DISPATCHED };

struct zc_rpc_call {
	struct zc__inode node;		/* inbox / worker queue */
	struct zc__sconn *sc;
	struct zc__method *m;
	uint64_t id;
	uint64_t deadline;		/* CLOCK_MONOTONIC ns, 0: none */
	uint64_t start_ns;		/* parse pass of its first frame */
	uint32_t msg_len;
	uint32_t got;			/* bytes reassembled */
	enum call_state state;
	atomic_bool cancelled;
	bool answered_early;		/* drain sent CANCELLED already */
	bool peer_cancelled;
	int status;
	struct zc_chain req;
	struct zc_chain resp;
	char msg[64];
};

struct zc_rpc_server {
	struct zc_rpc_server_config cfg;
	struct zc__srctx *rcs;
	struct zc__method **methods;	/* sorted by id */
	unsigned nmethods;
	bool listening;
	atomic_bool drained;		/* set by drain/destroy, read by accept */
	uint16_t port;
	struct zc_addr bound;		/* first listener's, set by listen */
	/* workers */
	pthread_mutex_t wlock;
	pthread_cond_t wcond;
	struct zc__inode *whead, *wtail;
	bool wstop;
	pthread_t *wthreads;
	unsigned nworkers;
	/* stats */
	zc__ctr conns_accepted, conns_open, conns_protocol_error, requests,
		rejected_overload, rejected_too_large, rejected_unknown,
		rejected_draining, expired_queued, cancels, dropped_answers,
		tx_budget_stops, rx_budget_stops, inflight, inflight_bytes;
	zc__ctr sconns_live;		/* sconn structs not freed yet */
	atomic_uint budget_waiting;	/* connections waiting, all reactors */
};

struct zc__method *zc__server_method(const struct zc_rpc_server *s,
				     uint32_t id);
/* Reactor thread: accept callback of the listeners. */
void zc__server_accept(struct zc_listener *l, struct zc_conn *c, void *ud);
/* Reactor thread: the inbox of answers. */
void zc__server_inbox(struct zc__inbox *ib, struct zc__inode *list);
/* Worker side: queue a call, run one. */
void zc__worker_push(struct zc_rpc_server *s, struct zc_rpc_call *call);
/* Finish @call with its status/resp set (any thread). */
void zc__call_finish(struct zc_rpc_call *call);
/* Reactor thread: parse connections that waited for request-byte room. */
void zc__server_resume(struct zc_work *w);
/* Reactor thread: drain steps on every connection of @rc. */
void zc__server_goaway_all(struct zc__srctx *rc);
void zc__server_close_all(struct zc__srctx *rc, bool abort);

#endif /* ZCRPC_RPC_SERVER_H */
