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

/* Map value marking a refused message whose further fragments we skip. */
extern char zc__discard_mark;
#define ZC__DISCARD ((void *)&zc__discard_mark)

/* Period of the server's ticker: the resolution of deadlines of calls
 * waiting in a queue and of the drain.  Connection timeouts (seconds)
 * need less: while no deadline or drain is pending, the reactors are
 * ticked only every ZC__TICK_SLOW periods, so idle reactors wake 10 times
 * a second, not 100. */
#define ZC__TICK_MS 10u
#define ZC__TICK_SLOW 10u

/* Per reactor: its listener, its connections, the inbox of answers made
 * on other threads. */
struct zc__srctx {
	struct zc_rpc_server *s;
	struct zc_reactor *r;
	struct zc_listener *l;
	struct zc__inbox inbox;
	struct zc__sconn *conns;	/* doubly linked via next/prev */
	struct zc__tx_stage stage;	/* every connection's frames */
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
	/* Timers: the server's ticker queues tick_work (server_tick.c)
	 * while this reactor has connections or a drain to finish. */
	struct zc_work tick_work;
	atomic_bool tick_queued;
	atomic_uint nconns;		/* rc->conns length, for the ticker */
	/* Drain (reactor thread): started by drain_work, finished when the
	 * last connection of this reactor has closed. */
	struct zc_work drain_work;
	atomic_bool drain_queued;
	bool draining, drain_cut, drain_reported;
	uint64_t drain_deadline;	/* ns */
	/* Ring bytes that calls of this reactor pin as views, and the cap
	 * above which request bytes are copied out (server_mem.c). */
	size_t pinned, pin_max;
	/* A bulk reactor (accepts nothing, takes connections that turn
	 * bulk: server_move.c). */
	bool bulk;
	/* Connections on their way here (server_move.c): this reactor's
	 * drain is not done while any is. */
	atomic_uint inbound;
};

/* Field order is for the cache: with 1,000 active connections each
 * request lands on a cold one, and a tick walks all of them; line 0 and
 * 1 hold what a request and a tick read, the rest follows. */
struct zc__sconn {
	/* Line 0. */
	struct zc__sconn *next, *prev;
	struct zc__srctx *rc;
	struct zc_conn *conn;		/* NULL after on_close */
	struct zc__map calls;		/* id -> call or the discard mark */
	uint32_t ncalls;		/* calls (not discard marks) in map */
	uint32_t nreasm;		/* calls still being reassembled */
	/* Line 1. */
	bool hello, draining, broken, parsing, paused;
	bool budget_wait;		/* on rc->budget_waiters */
	/* The peer shut its side (half-close): answer what arrived before,
	 * then close. */
	bool peer_eof;
	/* Close gracefully once the send queue is idle, whatever the calls
	 * (drain past its deadline, idle, version mismatch). */
	bool close_soon;
	bool closing;			/* graceful close started */
	bool flush_queued;
	bool tls_peer_known;
	/* Moving to a bulk reactor (server_move.c): bulk_want from the
	 * request that crossed bulk_message_bytes (left unparsed) until the
	 * move ends; moving while the stack moves it (unlinked from rc);
	 * bulk_done once moved or given up (never tried again). */
	bool bulk_want, moving, bulk_done;
	bool move_check_queued;
	uint32_t nsending;		/* answers in the send queue */
	unsigned refs;			/* conn + calls not yet answered */
	uint64_t last_id;		/* highest request id seen */
	/* Timers, CLOCK_MONOTONIC ns (server_tick.c). */
	uint64_t last_rx;		/* last bytes received */
	uint64_t rx_since;		/* unparsed partial frame since, or 0 */
	uint64_t close_deadline;	/* graceful close turns into abort */
	struct zc__sconn *flush_next;
	/* Request bytes (msg_len) of its unanswered calls, and of those
	 * still being reassembled (server_mem.c). */
	uint64_t req_bytes, reasm_bytes;
	struct zc_frame_limits lim;
	struct zc_hello peer;
	struct zc_chain rx;		/* bytes not parsed yet */
	struct zc__tx tx;
	uint64_t hello_deadline;	/* until the peer's HELLO */
	uint64_t stall_base;		/* stall clocks start no earlier */
	/* Where the deadline of the frame that waits for budget starts. */
	uint64_t wait_since;
	struct zc__sconn *wait_next;
	/* The peer's TLS identity, fetched at its first request (the
	 * handshake is over by then); one reference, dropped with @sc. */
	struct zc_tls_peer *tls_peer;
	struct zc__srctx *move_to;
	struct zc_work move_check;
};

/*
 * REASM: fragments arriving.  DISPATCHED: with a handler or a worker
 * queue.  SENDING: answered, its RESPONSE still in the send queue (kept
 * in the id map so that a CANCEL can cut it and a reused id is seen).
 */
enum call_state { CALL_REASM, CALL_DISPATCHED, CALL_SENDING };

struct zc_rpc_call {
	struct zc__inode node;		/* inbox / worker queue */
	struct zc__sconn *sc;
	struct zc__method *m;
	uint64_t id;
	uint64_t deadline;		/* CLOCK_MONOTONIC ns, 0: none */
	uint64_t start_ns;		/* last_rx when its first frame parsed */
	uint32_t msg_len;
	struct zc__reasm ra;		/* reassembly into req */
	uint64_t last_frag;		/* ns of its last fragment (REASM) */
	struct zc__txmsg *tm;		/* its RESPONSE (SENDING) */
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
	/* cfg.nreactors accepting ones, then cfg.nbulk bulk ones. */
	struct zc__srctx *rcs;
	unsigned nrc;
	atomic_uint next_bulk;		/* round robin over the bulk ones */
	atomic_bool aborting;		/* destroy's abort has begun */
	struct zc__method **methods;	/* sorted by id */
	unsigned nmethods;
	bool listening;
	bool destroying;		/* destroy's first step done */
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
	/* Calls with a deadline in the worker queue (written under wlock:
	 * the ticker sweeps the queue only while there are some), and being
	 * reassembled (while there are some, or connections waiting for
	 * request-byte room, the reactors are ticked every ZC__TICK_MS
	 * rather than every ZC__TICK_SLOW). */
	atomic_uint wq_timed;
	zc__ctr reasm_timed;
	/* ticker (server_tick.c) */
	pthread_t ticker;
	bool ticker_started;
	pthread_mutex_t tlock;
	pthread_cond_t tcond;
	bool tstop;
	/* drain: started once, done() on the reactor that finishes last */
	atomic_bool drain_started;
	atomic_uint drain_left;
	atomic_bool drain_late;
	void (*drain_done)(void *arg, int result);
	void *drain_arg;
	unsigned drain_timeout_ms;
	/* stats */
	zc__ctr conns_accepted, conns_open, conns_protocol_error, requests,
		rejected_overload, rejected_too_large, rejected_unknown,
		rejected_draining, expired_queued, cancels, dropped_answers,
		tx_budget_stops, rx_budget_stops, inflight, inflight_bytes,
		conns_timed_out, expired_reasm, lingered, drain_cut,
		rx_copied, conns_unwritable, conns_moved;
	zc__ctr reasm_bytes;		/* inflight_bytes of partial messages */
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
/* ---- memory policy (server_mem.c), reactor thread ---- */
/* Per-connection receive budget, unwritable timeout and the reactor's
 * pin cap, at accept. */
void zc__srv_conn_setup(struct zc__sconn *sc);
/* Keep the next @len bytes of @call as ring views? */
bool zc__srv_keep_views(const struct zc__sconn *sc,
			const struct zc_rpc_call *call, uint32_t len);
/* An answer about to be queued: if its body pins ring buffers past the
 * reactor's cap (an echo of the request, say, that a peer may leave
 * unread), it is copied out; else its pin is charged until it leaves the
 * queue. */
void zc__srv_answer_unpin(struct zc__sconn *sc, struct zc__txmsg *tm);
/* After parsing: move the leftover bytes of @sc out of the ring when
 * that is cheap or the pool runs low. */
void zc__srv_rx_unpin(struct zc__sconn *sc);
/* Admission of a new request of @msg_len bytes by bytes held. */
enum zc__bytes_verdict { ZC__BYTES_OK, ZC__BYTES_WAIT, ZC__BYTES_REFUSE };
enum zc__bytes_verdict zc__srv_bytes_check(const struct zc__sconn *sc,
					   uint32_t msg_len);
/* A connection moved to this reactor (@sc->rc): the request bytes it
 * brought as views of the old reactor's ring are copied out (the pin
 * caps are per ring), or, without memory, charged here. */
void zc__srv_conn_moved(struct zc__sconn *sc);
/* on_close: log and count a connection the unwritable timeout ended. */
void zc__srv_conn_closed(struct zc__sconn *sc, int err);

/* Reactor thread: drain steps on every connection of @rc. */
void zc__server_goaway_all(struct zc__srctx *rc);
/* Reactor thread: destroy's step: GOAWAY, cancel, reset every conn. */
void zc__server_abort_all(struct zc__srctx *rc);

/* ---- moving to a bulk reactor (server_move.c), reactor thread ---- */
/* @f, the frame at the head of @sc's unparsed bytes: true when it is a
 * new request that makes @sc move before it is parsed (then bulk_want is
 * set and a move check queued). */
bool zc__sconn_bulk_check(struct zc__sconn *sc, const struct zc_frame *f);
/* Something @sc waited for may have ended: check (later, outside any
 * batch) whether it can move now. */
void zc__sconn_move_kick(struct zc__sconn *sc);
/* Link @sc into @rc's connections (accept, move). */
void zc__sconn_link(struct zc__srctx *rc, struct zc__sconn *sc);
void zc__sconn_unlink(struct zc__sconn *sc);
/* server.c's parse() and sconn_put(), for the move. */
void zc__sconn_parse(struct zc__sconn *sc);
void zc__sconn_put(struct zc__sconn *sc);

/* ---- shared by server.c and server_tick.c (reactor thread) ---- */
/* @now + @ms, or UINT64_MAX for ZC_RPC_TIMEOUT_OFF. */
uint64_t zc__deadline_after(uint64_t now, unsigned ms);
/* Close gracefully when nothing is left to send for the calls it must
 * still answer (draining, half-closed, close_soon).  Also run by every
 * flush that leaves the send queue idle (tx.on_idle). */
void zc__sconn_maybe_close(struct zc__sconn *sc);
/* Close gracefully once the send queue is idle, whatever the calls;
 * reset after linger_ms. */
void zc__sconn_close_soon(struct zc__sconn *sc);
/* The calls of @sc being reassembled, in a malloc array *@out (freed by
 * the caller); returns how many. */
uint32_t zc__sconn_reasm(struct zc__sconn *sc, struct zc_rpc_call ***out);
/* Reset @sc: log @why, count it in @counter. */
void zc__sconn_reset(struct zc__sconn *sc, zc__ctr *counter, const char *why);
/* Send GOAWAY (@status, @why as its text) once and stop taking calls. */
void zc__sconn_goaway(struct zc__sconn *sc, int status, const char *why);
/* Answer the calls of @sc still open with ERROR cancelled and cut the
 * answers being sent (drain deadline).  True when anything was cut. */
bool zc__sconn_cancel_rest(struct zc__sconn *sc);
/* Answer a call being reassembled whose deadline passed; the rest of
 * its fragments are skipped. */
void zc__sconn_expire_reasm(struct zc__sconn *sc, struct zc_rpc_call *call);
/* A connection waiting for request-byte room: refuse the waiting
 * request if its deadline passed meanwhile. */
void zc__sconn_tick_wait(struct zc__sconn *sc);
/* A drained reactor whose connections are all closed reports it. */
void zc__server_drain_check(struct zc__srctx *rc);
/* Timers. */
int zc__ticker_start(struct zc_rpc_server *s);
void zc__ticker_stop(struct zc_rpc_server *s);
void zc__server_tick(struct zc_work *w);
void zc__server_drain_begin(struct zc_work *w);
/* Worker queue: answer calls whose deadline passed while queued. */
void zc__worker_expire(struct zc_rpc_server *s, uint64_t now);

#endif /* ZCRPC_RPC_SERVER_H */
