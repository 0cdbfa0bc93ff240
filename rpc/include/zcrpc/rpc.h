/* SPDX-License-Identifier: MIT */
/*
 * zcrpc/rpc.h - multiplexed RPC over the zcrpc stack: a server that hands
 * handlers their requests as views of the receive buffers, and a client
 * with many calls in flight per connection.  docs/PROTOCOL.md is the wire.
 *
 * DOC: Requests are views
 *
 *   The server parses frames straight out of the stack's receive buffers.
 *   A handler receives its request as a zc_chain whose views point into
 *   those buffers: many small requests share one buffer, a large one spans
 *   several.  The chain is the handler's: it may keep it, send it back
 *   (echo does), or move it to another thread; releasing it anywhere is
 *   fine, a buffer released off its reactor goes home through the pool's
 *   deferred list.  Request bytes count against the server's receive
 *   budget (max_inflight_bytes) until the call is answered.
 *
 * DOC: Answers are chains
 *
 *   zc_rpc_reply() moves a chain into the connection's send queue: views of
 *   the request, reactor pool buffers, or application memory wrapped with
 *   zc_buf_wrap() (the release callback says when it may be reused).  Large
 *   answers are cut into frames of the peer's max_frame and interleaved
 *   with every other call of the connection, and big slices go out
 *   zero-copy according to the connection's send mode.
 *
 * DOC: Threads
 *
 *   A server or client is bound to reactors (zc_reactor_spawn()).
 *   Callbacks of the client and INLINE handlers run on a reactor thread;
 *   WORKER handlers run on the server's worker threads.  Functions say
 *   which threads may call them.
 *
 * Errors are negative errno values; errno is never set.  A function that
 * returns an error never calls its callback.
 */
#ifndef ZCRPC_RPC_H
#define ZCRPC_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <zcrpc/alloc.h>
#include <zcrpc/stack.h>
#include <zcrpc/tls.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Call outcomes; values are the wire codes of PROTOCOL.md section 5. */
enum zc_rpc_status {
	ZC_RPC_OK = 0,
	ZC_RPC_CANCELLED = 1,
	ZC_RPC_DEADLINE_EXCEEDED = 2,
	ZC_RPC_UNKNOWN_METHOD = 3,
	ZC_RPC_TOO_LARGE = 4,
	ZC_RPC_OVERLOADED = 5,	/* retryable: not processed */
	ZC_RPC_UNAVAILABLE = 6,	/* retryable: not processed */
	ZC_RPC_INTERNAL = 7,
	ZC_RPC_PROTOCOL_ERROR = 8,
	ZC_RPC_PERMISSION_DENIED = 9, /* refused by the authorize callback */
};
#define ZC_RPC_NSTATUS 10

/* "ok", "cancelled", "deadline_exceeded", ...; "internal" for unknown. */
ZC_API const char *zc_rpc_status_name(int status);
/* True for OVERLOADED and UNAVAILABLE: the call was not processed. */
ZC_API bool zc_rpc_status_retryable(int status);

/* Built-in method: answers its request payload. */
#define ZC_RPC_METHOD_ECHO 1u
/* Applications register ids from here on; below is reserved. */
#define ZC_RPC_METHOD_USER 256u

/* Protocol limits (see PROTOCOL.md section 4). */
#define ZC_RPC_MAX_FRAME_DEFAULT (64u * 1024)
#define ZC_RPC_MAX_MESSAGE_DEFAULT (64u << 20)

/* =========================================================================
 * Server
 */
struct zc_rpc_server;
struct zc_rpc_call;

/* Where a method's handler runs. */
enum zc_rpc_mode {
	ZC_RPC_INLINE = 0,	/* on the reactor that received the request */
	ZC_RPC_WORKER,		/* on one of the server's worker threads */
};

/*
 * A handler.  @req's views are moved to the handler (take the struct by
 * assignment or release it; the server forgets it on return).  The handler
 * must answer @call exactly once, now or later, from any thread, with
 * zc_rpc_reply() or zc_rpc_reply_error(); until then @call stays valid.
 */
typedef void (*zc_rpc_handler_fn)(struct zc_rpc_call *call,
				  struct zc_chain *req, void *arg);

/*
 * Authorization: runs on the reactor thread for every call of a known
 * method, before the call is admitted (hence before its handler and its
 * payload's reassembly).  @peer is the verified identity of the
 * connection's peer (zcrpc/tls.h), or NULL (no TLS, no certificate, or
 * verification off); it is borrowed for the duration of the callback.
 * Return true to let the call through; false answers it
 * ZC_RPC_PERMISSION_DENIED.  Must not block.  Unknown methods are
 * answered UNKNOWN_METHOD without asking.
 */
typedef bool (*zc_rpc_authorize_fn)(void *arg, uint32_t method,
				    const struct zc_tls_peer *peer);

struct zc_rpc_server_config {
	/* Reactors that accept and serve connections (one listener each on
	 * the same socket, or see reuseport).  Borrowed: they must outlive
	 * the server. Required. */
	struct zc_reactor *const *reactors;
	unsigned nreactors;
	/* Worker threads for ZC_RPC_WORKER methods; pinned to the CPUs in
	 * worker_cpus[] when it is not NULL. [0: WORKER methods refused] */
	unsigned workers;
	const int *worker_cpus;
	/* Limits we announce in HELLO. [ZC_RPC_MAX_MESSAGE_DEFAULT,
	 * ZC_RPC_MAX_FRAME_DEFAULT] */
	uint32_t max_message;
	uint32_t max_frame;
	/* Calls being served at once, whole server and per connection;
	 * beyond them requests are answered OVERLOADED. [65536, 4096] */
	uint32_t max_inflight;
	uint32_t max_inflight_conn;
	/* Server receive budget: request bytes held by calls not yet
	 * answered, whole server.  A new request that would pass it waits
	 * unparsed (its connection stops reading once the reactor's
	 * rx_budget is reached) until calls finish; nothing fails.  Must be
	 * >= max_message. [256 MiB, or 2 x max_message if larger] */
	size_t max_inflight_bytes;
	/* Per connection: request bytes (msg_len of each call admitted and
	 * not yet answered, partial messages included).  A new request
	 * that would pass it waits unparsed while calls of this connection
	 * are being served (its socket is no longer read: TCP pushes back
	 * on that peer alone), and is answered OVERLOADED when only
	 * unfinished messages hold the budget (waiting would never end).
	 * One message is always admitted when the connection holds none.
	 * [max(max_message, max_inflight_bytes / 2)] */
	size_t max_inflight_bytes_conn;
	/* The last part of max_inflight_bytes that only single-frame
	 * requests (msg_len <= max_frame) may use, so that large or
	 * unfinished messages of some peers never keep small calls of the
	 * others out. [max_inflight_bytes / 8] */
	size_t reserve_bytes;
	/* Per connection: answer bytes queued in rpc plus not yet released
	 * by the stack.  Above it the server stops parsing that connection's
	 * requests (so its receive budget fills and the stack stops reading)
	 * until the peer has read.  [8 MiB] */
	size_t tx_budget;
	/* Per connection: answer bytes handed to the stack at once. [1 MiB] */
	size_t tx_window;
	/* TLS for every accepted connection: a ZC_TLS_SERVER context.
	 * Borrowed: it must outlive the server. [NULL: plaintext] */
	struct zc_tls_ctx *tls;
	/* Called before each call, see zc_rpc_authorize_fn. [NULL: every
	 * call is allowed] */
	zc_rpc_authorize_fn authorize;
	void *authorize_arg;
	/*
	 * Timeouts in milliseconds, enforced by the server's ticker thread
	 * on the reactors (resolution 100 ms; 10 ms for call deadlines and
	 * the drain); ZC_RPC_TIMEOUT_OFF turns one off.  Each connection
	 * they close is logged with its reason and counted in
	 * conns_timed_out (linger resets in lingered).
	 * hello_timeout_ms - the peer's HELLO must arrive within it after
	 *                    accept, or the connection is reset. [10000]
	 * idle_timeout_ms  - a connection with no call in flight, nothing to
	 *                    send and no byte received for this long gets
	 *                    GOAWAY and is closed gracefully. [300000]
	 * stall_timeout_ms - a frame begun, or a message with fragments
	 *                    still to come, that receives nothing for this
	 *                    long resets the connection (the clock stops
	 *                    while the server itself has stopped reading
	 *                    that connection). [30000]
	 * linger_ms        - after the server closes gracefully (drain, idle,
	 *                    half-close, version mismatch), a peer that has
	 *                    not closed its side within it is reset; with
	 *                    ZC_RPC_TIMEOUT_OFF such a peer keeps its
	 *                    connection, and a drain waits for it. [2000]
	 */
	unsigned hello_timeout_ms;
	unsigned idle_timeout_ms;
	unsigned stall_timeout_ms;
	unsigned linger_ms;
	/* Per reactor: receive-ring bytes that requests, and answers that
	 * keep their views (an echo), may hold as views (zero-copy; each
	 * ring buffer a message's views touch counts whole, once per
	 * message, and an answered request's views count as its answer's,
	 * not twice).  Beyond
	 * it, and for messages over 1 MiB or in many fragments, request
	 * bytes are copied into memory of their own as they arrive, so the
	 * ring is never drained by peers holding its buffers.
	 * [a quarter of the reactor's pool_bytes] */
	size_t rx_pin_max;
	/* A connection whose peer takes no byte for this long while we have
	 * bytes to send (zero window, or data unacknowledged) is reset by
	 * the kernel (TCP_USER_TIMEOUT), logged and counted in
	 * conns_unwritable.  Until then a peer that does not read only
	 * stops itself: past tx_budget we stop reading its requests and
	 * its PINGs.  ZC_RPC_TIMEOUT_OFF keeps the kernel's own limits.
	 * [30000 ms] */
	unsigned unwritable_timeout_ms;
	/* One socket per reactor with SO_REUSEPORT (the kernel hashes
	 * connections evenly over them) instead of one socket they all
	 * accept on (where the reactor whose accept the kernel wakes first
	 * takes the connection, which can be uneven).  Beware: any process
	 * of the same user may then bind the port too and take a share of
	 * the connections.  Not for Unix sockets. [false: a port already in
	 * use fails -EADDRINUSE] */
	bool reuseport;
	/*
	 * Bulk reactors: they accept nothing, and serve the connections
	 * that turn bulk, so that the reactors above keep serving small
	 * calls promptly (a thread busy copying one peer's megabytes takes
	 * tens of microseconds to milliseconds to look at anyone else's
	 * request).  A connection on an accepting reactor whose new request
	 * announces msg_len >= bulk_message_bytes stops parsing before that
	 * request, lets the calls it has dispatched be answered and their
	 * answers framed (bytes still queued in the stack go out from the
	 * bulk reactor), then moves (zc_conn_move(): its unparsed bytes and
	 * the calls it is still receiving with it) to a bulk reactor, round
	 * robin, where parsing resumes.  It stays there until it closes;
	 * the protocol does not change and the peer sees nothing but the
	 * pause.  Not for TLS connections (they stay).  Give bulk reactors
	 * a higher niceness (zc_reactor_config.nice, e.g. 10): when the
	 * CPUs are busy their threads then yield to the reactors serving
	 * small calls (docs/RELIABILITY.md measures both).  Borrowed: they
	 * must outlive the server, and must not be in @reactors.
	 * [NULL / 0: none; every connection stays where it was accepted] */
	struct zc_reactor *const *bulk_reactors;
	unsigned nbulk;
	/* See bulk_reactors. [1 MiB] */
	uint32_t bulk_message_bytes;
	/* Every listener of the server accepts with one single-shot accept
	 * at a time (ZC_LISTEN_ONESHOT_ACCEPT, zcrpc/stack.h): for kernels
	 * without multishot accept, and to measure it.  [false: multishot] */
	bool oneshot_accept;
};

/* A timeout of the server config that never fires. */
#define ZC_RPC_TIMEOUT_OFF UINT32_MAX

/*
 * Any thread.  Create a stopped server, with its worker threads and its
 * ticker thread (the timers of every reactor of the server; it wakes
 * them 10 times a second while they have connections, 100 times while a
 * drain or a call deadline needs it).  Returns 0 and *@out, or -EINVAL
 * (no reactors, nbulk without bulk_reactors, max_frame outside [4 KiB,
 * 16 MiB], max_message over
 * max_inflight_bytes, reserve_bytes not below max_inflight_bytes),
 * -ENOMEM, a pthread error.  The caller owns the server and must
 * zc_rpc_server_destroy() it.
 *
 * Memory: every connection gets a receive budget of 2 x (max_frame + 32)
 * bytes (zc_conn_set_rx_budget(); a smaller rx_budget of the reactor is
 * kept): it is what makes a paused connection stop reading.  What one
 * peer can make the server hold is bounded by its receive budget, its
 * max_inflight_bytes_conn of requests and its tx_budget of answers and
 * control replies; docs/ARCHITECTURE.md ("Memory a peer can hold").
 */
ZC_API ZC_MUST_CHECK int zc_rpc_server_create(
	const struct zc_rpc_server_config *cfg, struct zc_rpc_server **out);

/*
 * Any thread, before zc_rpc_server_listen().  Register @fn for @method
 * (>= ZC_RPC_METHOD_USER), @name (copied) for logs and stats, with at
 * most @max_inflight calls at once (0: only the server limits).  Returns
 * 0, -EINVAL (reserved id, NULL fn, WORKER without workers), -EEXIST,
 * -EBUSY (already listening), -ENOMEM.
 */
ZC_API ZC_MUST_CHECK int zc_rpc_server_register(struct zc_rpc_server *s,
						uint32_t method,
						const char *name,
						enum zc_rpc_mode mode,
						uint32_t max_inflight,
						zc_rpc_handler_fn fn,
						void *arg);

/*
 * Any thread except the server's reactors; on the only reactor of a
 * one-reactor server (an embedder's loop thread) it runs inline.  Listen
 * on @addr (IPv4, IPv6 or Unix; port 0 picks one) on every reactor.
 * Returns 0, -EBUSY (already listening), -EINVAL (reuseport with a Unix
 * socket), -EAFNOSUPPORT, or zc_listen()'s errors: -EADDRINUSE when the
 * port is taken (then no listener is left open).  Unix socket files: see
 * zc_listen() (created by the bind, removed at close).
 */
ZC_API ZC_MUST_CHECK int zc_rpc_server_listen(struct zc_rpc_server *s,
					      const struct sockaddr *addr,
					      socklen_t addrlen);

/*
 * Any thread except the server's reactors (and not a reactor's for a
 * host name, which is resolved here on the calling thread).  Listen on
 * @addr, a string of zc_addr_resolve() with ZC_ADDR_PASSIVE:
 * "127.0.0.1:0", "localhost:7000" (its first address), "[::1]:7000",
 * ":7000" (every address), "unix:/run/app.sock", "unix:@app".  Returns
 * zc_rpc_server_listen()'s and zc_addr_resolve()'s errors.
 */
ZC_API ZC_MUST_CHECK int zc_rpc_server_listen_str(struct zc_rpc_server *s,
						  const char *addr);

/* Bound port (host order), 0 when not listening or on a Unix socket. */
ZC_API uint16_t zc_rpc_server_port(const struct zc_rpc_server *s);

/*
 * Any thread.  The bound address, as a string a client can be given
 * ("127.0.0.1:41234", "[::1]:7000", "unix:@app"; a wildcard reads "[::]:
 * PORT" or "0.0.0.0:PORT").  Returns its length, -ENOTCONN (not
 * listening) or zc_addr_format()'s errors.
 */
ZC_API int zc_rpc_server_address(const struct zc_rpc_server *s, char *buf,
				 size_t size);

/*
 * Completion of a drain: on the reactor thread that closed the last
 * connection, once.  @result is 0 when every call up to each GOAWAY was
 * answered in full, -ETIMEDOUT when the deadline cut some.
 */
typedef void (*zc_rpc_drain_fn)(void *arg, int result);

/*
 * Any thread, the server's reactor threads included (it never blocks).
 * Start a graceful drain: stop accepting, send GOAWAY on every connection
 * naming the last request id it will answer (requests arriving after it
 * are answered UNAVAILABLE), and close each connection gracefully once
 * every call up to that id is answered and its answer fully handed to the
 * kernel.  At @timeout_ms the calls still open are answered CANCELLED
 * (the handlers see zc_rpc_call_cancelled()), answers still being sent
 * are cut by an ERROR cancelled frame (PROTOCOL.md section 8), and the
 * connections close as soon as that is sent; a peer that does not close
 * within linger_ms after that is reset.  @done(@arg, result) runs once
 * when every connection is closed (handlers of cancelled calls may still
 * be running: zc_rpc_server_destroy() waits for them).
 * Returns 0, or -EALREADY (a drain or destroy started before: @done
 * will not run).
 */
ZC_API ZC_MUST_CHECK int zc_rpc_server_drain_start(struct zc_rpc_server *s,
						   unsigned timeout_ms,
						   zc_rpc_drain_fn done,
						   void *arg);

/*
 * Blocking zc_rpc_server_drain_start(): any thread except the server's
 * reactors (there it returns -EDEADLK at once and does nothing: use
 * zc_rpc_server_drain_start() and keep running the reactor).  Returns
 * the drain's result (0 or -ETIMEDOUT), or -EALREADY.
 */
ZC_API int zc_rpc_server_drain(struct zc_rpc_server *s, unsigned timeout_ms);

/*
 * Abort what is left (every connection reset, the handlers of calls in
 * flight see zc_rpc_call_cancelled()), wait for every handler to answer
 * (handlers must answer even cancelled calls), join the workers and the
 * ticker, free.  Not from inside a callback of this server (a handler,
 * the drain's done).
 * From a thread that is not one of the server's reactors: blocks until
 * done and returns 0.
 * From the reactor thread of a one-reactor server (an embedder running
 * zc_reactor_run_once() on its own thread): never blocks.  Returns 0
 * when the server is freed, or -EBUSY when connections, calls or queued
 * work still need the loop: run zc_reactor_run_once() and call again
 * (nothing is repeated; the server stays valid until 0).
 * From a reactor thread of a server with several reactors: -EDEADLK at
 * once, nothing done.
 */
ZC_API int zc_rpc_server_destroy(struct zc_rpc_server *s);

/*
 * Any thread, once per call.  Answer @call with @resp, moving its views
 * (on return @resp is empty and reusable, whatever the outcome).  If the
 * connection is gone or the call was cancelled the answer is dropped.
 * After this @call is invalid.  Returns 0, or -E2BIG when @resp exceeds
 * the peer's max_message (the call is then answered TOO_LARGE instead).
 */
ZC_API int zc_rpc_reply(struct zc_rpc_call *call, struct zc_chain *resp);

/* Any thread, once per call.  Answer with an error @status (non-zero),
 * optional @msg text (copied, truncated to 64 bytes).  @call is invalid
 * after. */
ZC_API void zc_rpc_reply_error(struct zc_rpc_call *call, int status,
			       const char *msg);

/* Any thread, until the answer.  True once the client cancelled the call,
 * its deadline passed, or the server is shutting down: the handler should
 * stop and answer (any answer is then dropped or replaced). */
ZC_API bool zc_rpc_call_cancelled(const struct zc_rpc_call *call);

/* Method id, request id and absolute deadline (CLOCK_MONOTONIC ns, 0 when
 * none) of a call; any thread, until the answer. */
ZC_API uint32_t zc_rpc_call_method(const struct zc_rpc_call *call);
ZC_API uint64_t zc_rpc_call_id(const struct zc_rpc_call *call);
ZC_API uint64_t zc_rpc_call_deadline(const struct zc_rpc_call *call);

/* Reactor of the connection the call came in on: INLINE handlers may
 * allocate answer buffers from zc_reactor_pool() of it. */
ZC_API struct zc_reactor *zc_rpc_call_reactor(const struct zc_rpc_call *call);

/*
 * Any thread, until the call is answered.  The verified TLS identity of
 * the peer that made the call (subject and SANs of its certificate), or
 * NULL: plaintext connection, no client certificate, or verification off.
 * Borrowed from the call: copy what you need to keep past the answer.
 */
ZC_API const struct zc_tls_peer *
zc_rpc_call_peer_identity(const struct zc_rpc_call *call);

/* Per-method counters. */
struct zc_rpc_method_stats {
	const char *name;		/* as registered, while the server
					 * lives */
	uint64_t calls;			/* requests accepted for this method */
	/* answers sent, by status */
	uint64_t by_status[ZC_RPC_NSTATUS];
	uint64_t rx_bytes;		/* request payload bytes */
	uint64_t tx_bytes;		/* answer payload bytes */
	uint64_t inflight;		/* accepted, not yet answered */
};

struct zc_rpc_server_stats {
	uint64_t conns_accepted;
	uint64_t conns_open;
	uint64_t conns_protocol_error;	/* closed for a malformed frame */
	uint64_t requests;		/* request messages received */
	uint64_t rejected_overload;	/* answered OVERLOADED */
	uint64_t rejected_too_large;	/* answered TOO_LARGE */
	uint64_t rejected_unknown;	/* answered UNKNOWN_METHOD */
	uint64_t rejected_draining;	/* answered UNAVAILABLE */
	uint64_t expired_queued;	/* dropped: deadline passed in queue */
	uint64_t cancels;		/* CANCEL frames that found a call */
	uint64_t dropped_answers;	/* answers to calls already gone */
	uint64_t tx_budget_stops;	/* parsing paused by tx_budget */
	uint64_t rx_budget_stops;	/* ... by max_inflight_bytes */
	uint64_t conns_unwritable;	/* reset after unwritable_timeout_ms */
	uint64_t rx_copied;		/* request and answer bytes copied
					 * out of the receive ring
					 * (rx_pin_max, large messages) */
	uint64_t inflight;		/* calls being served */
	uint64_t inflight_bytes;	/* request bytes held by them */
	uint64_t conns_timed_out;	/* closed by hello/idle/stall timeout */
	uint64_t expired_reasm;		/* deadline passed mid-reassembly */
	uint64_t lingered;		/* reset: peer did not close in linger */
	uint64_t drain_cut;		/* calls and answers cut by a drain
					 * deadline (ERROR cancelled) */
	uint64_t conns_moved;		/* moved to a bulk reactor (per
					 * reactor: zc_reactor_stats()
					 * moved_in / moved_out) */
};

/*
 * Latency percentiles in nanoseconds, from log-linear histograms kept
 * without locks on the hot path: each value is the top of the bucket
 * holding that sample, so within 6.25 % above the true value (never above
 * max_ns, which is exact).  All zero before the first sample.
 */
struct zc_rpc_latency {
	uint64_t count;			/* samples */
	uint64_t p50_ns, p90_ns, p99_ns, p999_ns;
	uint64_t max_ns;
};

/* Any thread.  Snapshot of the server counters. */
ZC_API void zc_rpc_server_stats(const struct zc_rpc_server *s,
				struct zc_rpc_server_stats *out);
/* Any thread.  Counters of @method; -ENOENT when not registered (echo is
 * always registered). */
ZC_API int zc_rpc_server_method_stats(const struct zc_rpc_server *s,
				      uint32_t method,
				      struct zc_rpc_method_stats *out);
/*
 * Any thread.  Latency of @method's calls on the server since it was
 * created: from the receive that brought the request's first frame (one
 * clock read per receive) to its answer queued on the connection
 * (handler time included; one clock read per call), every call admitted and
 * answered whatever its status (requests refused OVERLOADED on arrival
 * are not).  Returns 0, or -ENOENT when not registered.
 */
ZC_API int zc_rpc_server_method_latency(const struct zc_rpc_server *s,
					uint32_t method,
					struct zc_rpc_latency *out);

/* =========================================================================
 * Client: one peer, a small pool of multiplexed connections.
 */
struct zc_rpc_client;
struct zc_rpc_pending;

/*
 * Completion of a call, on the client's reactor thread, exactly once per
 * accepted call.  On ZC_RPC_OK @resp holds the answer's views, moved to
 * the callee (take by assignment or release; forgotten on return); else
 * @resp is empty.
 */
typedef void (*zc_rpc_done_fn)(void *arg, int status, struct zc_chain *resp);

struct zc_rpc_client_config {
	/* Reactor running the connections and callbacks.  Borrowed.
	 * Required. */
	struct zc_reactor *reactor;
	/* The peer, exactly one of addr, target and addrs.  addr: one
	 * address (IPv4, IPv6 or Unix), copied. */
	const struct sockaddr *addr;
	socklen_t addrlen;
	/* Connections kept open to the peer. [2] */
	unsigned conns;
	/* Limits we announce in HELLO (answers we accept).
	 * [ZC_RPC_MAX_MESSAGE_DEFAULT, ZC_RPC_MAX_FRAME_DEFAULT] */
	uint32_t max_message;
	uint32_t max_frame;
	/* Calls in flight per connection before calls go to the next
	 * connection; when all are full, calls wait in the client. [0: no
	 * limit] */
	uint32_t max_inflight_conn;
	/* Request bytes accepted by zc_rpc_call() and not yet released by
	 * the stack (zero-copy bytes until their notification).  A call that
	 * would pass it gets -EAGAIN from zc_rpc_call(), unless nothing is
	 * pending (so one message larger than the budget still goes).
	 * [64 MiB] */
	size_t tx_budget;
	/* Per connection: request bytes handed to the stack at once.
	 * [1 MiB] */
	size_t tx_window;
	/* Reconnect backoff: first delay, cap (ms); each delay is drawn
	 * uniformly in [d/2, d], d doubling per failure. [10, 2000] */
	unsigned backoff_min_ms;
	unsigned backoff_max_ms;
	/* Connect timeout: TCP connect, then the server's HELLO (ms).
	 * [2000] */
	unsigned connect_timeout_ms;
	/* TLS on every connection: a ZC_TLS_CLIENT context (its
	 * server_name is the name checked).  The TLS handshake counts in
	 * connect_timeout_ms.  Borrowed: it must outlive the client.
	 * [NULL: plaintext] */
	struct zc_tls_ctx *tls;
	/* The peer as a string instead of addr: "localhost:7000",
	 * "10.0.0.1:7000", "[::1]:7000", "unix:/run/app.sock", "unix:@app"
	 * (zc_addr_resolve()).  Resolved once, by zc_rpc_client_create() on
	 * the calling thread; not kept.  Each connection tries the
	 * candidates in turn (IPv6 and IPv4 alternating, as the resolver
	 * ranks them) before it backs off, and keeps to the one that
	 * answered.  [NULL] */
	const char *target;
	/* Or candidates resolved by the caller (its own resolver), tried in
	 * this order as target's are; copied.  At most ZC_ADDR_MAX.
	 * [NULL, 0] */
	const struct zc_addr *addrs;
	unsigned naddrs;
	/* Every call waits for ready (see zc_rpc_call_opts). [false] */
	bool wait_for_ready;
};

/*
 * Any thread (on the client's reactor thread the start runs inline;
 * not on any reactor's for a host name in target: it is resolved here).
 * Create the client and start connecting.  Returns 0 and *@out, -EINVAL
 * (no reactor; not exactly one of addr, target and addrs; an address too
 * short for its family; a malformed target; naddrs 0 or over
 * ZC_ADDR_MAX), -EAFNOSUPPORT (a family other than IPv4, IPv6, Unix),
 * zc_addr_resolve()'s errors (-ENOENT: the name does not resolve, ...),
 * -ENOMEM, a pthread error.  The caller owns the client and must
 * zc_rpc_client_destroy() it.
 */
ZC_API ZC_MUST_CHECK int zc_rpc_client_create(
	const struct zc_rpc_client_config *cfg, struct zc_rpc_client **out);

/*
 * Fail every call still pending with UNAVAILABLE (callbacks run first),
 * close the connections, join the client's ticker, free.
 * From any thread but the client's reactor: blocks until done, returns 0.
 * From the client's reactor thread (an embedder running
 * zc_reactor_run_once() on its own thread): never blocks.  Returns 0
 * when the client is freed, or -EBUSY when connections or queued work
 * still need the loop: run zc_reactor_run_once() and call again (the
 * client stays valid, and refuses new calls, until 0).
 */
ZC_API int zc_rpc_client_destroy(struct zc_rpc_client *c);

struct zc_rpc_call_opts {
	/* Budget for the whole call in microseconds, sent on the wire.
	 * [0: none] */
	uint64_t timeout_us;
	/* Wait for ready: while no connection is up (connecting, or backing
	 * off between attempts), the call waits in the client until one is,
	 * up to its deadline (then DEADLINE_EXCEEDED; without a deadline,
	 * until the client is destroyed), instead of failing UNAVAILABLE as
	 * soon as no connection is up or connecting.  A call already sent
	 * on a connection that is lost still fails UNAVAILABLE (it may have
	 * been served).  [false, or the client's wait_for_ready] */
	bool wait_for_ready;
};

/*
 * Any thread.  Start a call of @method with @req (views moved in: on
 * success @req is left empty; on error it is untouched).  @done(@arg, ...)
 * runs once on the reactor thread.  If @pending is not NULL it receives a
 * handle for zc_rpc_cancel() that the caller must drop with
 * zc_rpc_pending_put(), before or after the completion.
 * Returns 0, or -EINVAL (method 0, NULL done), -EAGAIN (tx_budget
 * reached: back-pressure, retry later), -ESHUTDOWN (client being
 * destroyed), -ENOMEM.  Any failure after acceptance (no connection,
 * too large for the peer, deadline, ...) comes through @done.
 */
ZC_API ZC_MUST_CHECK int zc_rpc_call(struct zc_rpc_client *c, uint32_t method,
				     struct zc_chain *req,
				     const struct zc_rpc_call_opts *opts,
				     zc_rpc_done_fn done, void *arg,
				     struct zc_rpc_pending **pending);

/*
 * Why a call ended as it did, beyond its status: what a caller logs.
 */
struct zc_rpc_error {
	int status;		/* the call's status */
	/* -errno behind it, 0 when none: for "no connection" and "deadline
	 * exceeded while connecting" the last connect failure
	 * (-ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH, -EPROTO: the peer sent
	 * no valid HELLO in time, ...); for "connection lost" the
	 * connection's error (-ECONNRESET, ...). */
	int err;
	/* A stable short text, one of: "ok", "cancelled", "deadline
	 * exceeded", "deadline exceeded while connecting", "no connection",
	 * "connection lost", "server going away", "answered by the server"
	 * (the status came from the server), "too large for the server",
	 * "client closing", "client out of memory", "protocol error".
	 * Static: never freed. */
	const char *reason;
	/* The address of that connect failure ("[::1]:7000", "unix:/x"),
	 * or "" */
	char peer[ZC_PEER_MAX];
};

/*
 * Why the call being completed failed: valid inside a zc_rpc_done_fn
 * (reactor thread) for the completion running, and on the thread that
 * called zc_rpc_call_sync() for its last call that returned a status,
 * until its next one.  NULL elsewhere.  The struct belongs to the
 * library: copy what you keep.
 */
ZC_API const struct zc_rpc_error *zc_rpc_call_error(void);

/*
 * Any thread.  Cancel the call: if it has not completed yet it completes
 * with CANCELLED and a CANCEL frame tells the server.  Harmless after
 * completion.  The handle stays the caller's.  Not after
 * zc_rpc_client_destroy() has started (zc_rpc_pending_put() still is).
 */
ZC_API void zc_rpc_cancel(struct zc_rpc_pending *p);
/* Any thread.  Drop the handle from zc_rpc_call(). */
ZC_API void zc_rpc_pending_put(struct zc_rpc_pending *p);

/*
 * Any thread except the client's reactor (-EDEADLK).  Blocking wrapper of
 * zc_rpc_call(): returns the status (>= 0) with the answer moved to *@resp
 * (which must be an initialised chain; on non-OK it is left empty), or a
 * negative error of zc_rpc_call() (then @req is still the caller's).
 */
ZC_API int zc_rpc_call_sync(struct zc_rpc_client *c, uint32_t method,
			    struct zc_chain *req,
			    const struct zc_rpc_call_opts *opts,
			    struct zc_chain *resp);

/*
 * Completion of zc_rpc_ping(), on the client's reactor thread, exactly once
 * per accepted ping.  @result is 0 when the peer's PONG came back, with
 * @rtt_ns the time from zc_rpc_ping() to it (waiting for a connection
 * included); else @rtt_ns is 0 and @result is -ETIMEDOUT (sent, no PONG
 * within the timeout: the peer does not read or does not answer),
 * -ENOTCONN (no connection became ready within the timeout),
 * -ECONNRESET (its connection closed before the PONG), -ESHUTDOWN (the
 * client is being destroyed) or -ENOMEM.
 */
typedef void (*zc_rpc_ping_fn)(void *arg, int result, uint64_t rtt_ns);

/*
 * Any thread.  Send a PING frame (PROTOCOL.md section 8) on one of the
 * client's ready connections, the least busy, and report the matching
 * PONG, or the failure, to @done(@arg, ...) on the reactor thread.  While
 * no connection is ready the ping waits for one (as a wait-for-ready call
 * does); @timeout_ms bounds the whole wait, connection and answer.  A PONG
 * proves the peer's reactor read our frame and answered, which an open
 * socket does not: it is the balancer's health check.
 * Ownership: nothing of the caller's is kept but @arg, which the client
 * hands back to @done and never touches; the ping's state belongs to the
 * client and is freed after @done returns.
 * Returns 0 (@done will run once, at the latest when the timeout passes
 * or the client is destroyed), or -EINVAL (NULL client or done, timeout
 * 0), -ESHUTDOWN (client being destroyed), -ENOMEM; then @done never runs.
 */
ZC_API ZC_MUST_CHECK int zc_rpc_ping(struct zc_rpc_client *c,
				     unsigned timeout_ms, zc_rpc_ping_fn done,
				     void *arg);

struct zc_rpc_client_stats {
	uint64_t calls;			/* accepted by zc_rpc_call() */
	uint64_t by_status[ZC_RPC_NSTATUS]; /* completions by status */
	uint64_t inflight;		/* accepted, not completed */
	uint64_t tx_bytes;		/* request payload bytes framed */
	uint64_t rx_bytes;		/* answer payload bytes received */
	uint64_t tx_budget_refusals;	/* zc_rpc_call() said -EAGAIN */
	uint64_t connects;		/* connections that completed HELLO */
	uint64_t connect_failures;
	uint64_t conns_open;
	uint64_t goaways;
	uint64_t protocol_errors;	/* connections closed as malformed */
	uint64_t tx_pending_bytes;	/* counted against tx_budget now */
};

/* Any thread.  Snapshot of the client counters. */
ZC_API void zc_rpc_client_stats(const struct zc_rpc_client *c,
				struct zc_rpc_client_stats *out);
/*
 * Any thread.  Latency of the client's calls since it was created: from
 * zc_rpc_call() (one clock read per call) to the completion (the receive
 * that brought the answer: one clock read per receive), waiting for a
 * connection included, every completed call whatever its status.
 */
ZC_API void zc_rpc_client_latency(const struct zc_rpc_client *c,
				  struct zc_rpc_latency *out);

/* =========================================================================
 * Balancer: one client over several servers.
 *
 * A balancer keeps one zc_rpc_client per endpoint, all on one reactor, and
 * sends each call to one of them by its policy.  An endpoint is taken out
 * of rotation when a call or a health check finds it unreachable, draining
 * (GOAWAY) or failing, and put back when a later health check succeeds
 * (checks of an endpoint that is out back off, doubling from eject_ms).
 * The health check is a PING with a timeout (zc_rpc_ping()): it proves the
 * server's reactor reads and answers, not only that its socket accepts; a
 * server that stopped reading fails it, and costs no call.
 *
 * Wait for ready (per call, or wait_for_ready in the config): a call made
 * while no endpoint is ready (in rotation, with a connection up) waits in
 * the balancer, up to max_waiting calls and its deadline, and goes to the
 * first endpoint that becomes ready: a connection that completes its
 * HELLO (an endpoint out of rotation is checked at once and comes back on
 * the PONG) or an endpoint a health check puts back.  Calls that do not
 * wait go to an endpoint at once and fail UNAVAILABLE when none answers.
 *
 * Retries: a call that failed where the server cannot have run it (no
 * connection, refused by GOAWAY, OVERLOADED, UNAVAILABLE answered by the
 * server) is sent again to another endpoint, up to max_attempts in all and
 * within its deadline; the caller sees only the last outcome.  A call
 * whose connection was lost after it was sent may have run: it is retried
 * only if its method is listed as idempotent, else reported (at most once).
 * The request's views are kept (shared, not copied) until the call ends.
 */
#define ZC_RPC_BALANCER_MAX 16u

enum zc_rpc_balance {
	/* Each call to the next endpoint in rotation. */
	ZC_RPC_BALANCE_ROUND_ROBIN = 0,
	/* Of two endpoints drawn at random, the one with fewer calls in
	 * flight (power of two choices). */
	ZC_RPC_BALANCE_LEAST_OUTSTANDING = 1,
};

struct zc_rpc_balancer;

struct zc_rpc_balancer_config {
	/* Reactor of every endpoint's client.  Borrowed.  Required. */
	struct zc_reactor *reactor;
	/* Endpoints as strings (zc_addr_resolve(): "host:port", "[v6]:port",
	 * "unix:/path"), resolved by zc_rpc_balancer_create() on the calling
	 * thread; copied.  1 to ZC_RPC_BALANCER_MAX.  Required. */
	const char *const *targets;
	unsigned ntargets;
	enum zc_rpc_balance policy;	/* [ROUND_ROBIN] */
	/* Template of each endpoint's client (reactor and the address fields
	 * are ignored), or NULL for the defaults. */
	const struct zc_rpc_client_config *client;
	/* Health checks: every health_interval_ms, each endpoint in rotation
	 * is checked, waiting up to health_timeout_ms for its connection
	 * and answer [1000, 500].  An endpoint found unreachable, draining
	 * or failing is out of rotation for eject_ms, doubled per failed
	 * check in a row up to 8 x eject_ms [500]; then it is checked, and
	 * calls may try it again. */
	unsigned health_interval_ms;
	unsigned health_timeout_ms;
	unsigned eject_ms;
	/* Sends per call at most, the first included. [3] */
	unsigned max_attempts;
	/* Methods that may run twice: retried even after their connection was
	 * lost once sent.  Copied. [none] */
	const uint32_t *idempotent;
	unsigned nidempotent;
	/* Every call waits for ready (see above); so does client's
	 * wait_for_ready, which the endpoints' own clients never get: the
	 * balancer does the waiting. [false] */
	bool wait_for_ready;
	/* Calls waiting for ready at most; beyond, zc_rpc_balancer_call()
	 * returns -EAGAIN. [1024] */
	unsigned max_waiting;
};

/*
 * Any thread but a reactor's (names are resolved here).  Create the
 * balancer, its clients (which start connecting) and its health-check
 * thread.  Returns 0 and *@out, -EINVAL (no reactor, no targets or more
 * than ZC_RPC_BALANCER_MAX, a client config refused), -EDEADLK (on a
 * reactor thread), zc_rpc_client_create()'s errors (the failing target is
 * logged), -ENOMEM.  The caller owns the balancer and must
 * zc_rpc_balancer_destroy() it.
 */
ZC_API ZC_MUST_CHECK int zc_rpc_balancer_create(
	const struct zc_rpc_balancer_config *cfg,
	struct zc_rpc_balancer **out);

/*
 * Any thread but the balancer's reactor (-EDEADLK).  Stop the health
 * checks, fail every call still pending or waiting for ready with
 * UNAVAILABLE (not retried), destroy the clients, free.  Returns 0.
 */
ZC_API int zc_rpc_balancer_destroy(struct zc_rpc_balancer *b);

/*
 * Any thread.  zc_rpc_call() over the balancer's endpoints: @req's views
 * are moved in on success (on error @req is untouched), @done runs once on
 * the reactor thread with the final outcome, and zc_rpc_call_error()
 * inside it says why, for the last endpoint tried ("deadline exceeded
 * while connecting" for a call whose deadline passed while it waited for
 * a ready endpoint).  Returns 0, or -EINVAL, -EAGAIN (the chosen
 * endpoint's tx_budget is full, or max_waiting calls wait for ready
 * already), -ESHUTDOWN (being destroyed), -ENOMEM.
 */
ZC_API ZC_MUST_CHECK int zc_rpc_balancer_call(struct zc_rpc_balancer *b,
					      uint32_t method,
					      struct zc_chain *req,
					      const struct zc_rpc_call_opts *opts,
					      zc_rpc_done_fn done, void *arg);

struct zc_rpc_balancer_stats {
	uint64_t calls;		/* accepted by zc_rpc_balancer_call() */
	uint64_t retries;	/* sends after the first, all calls */
	uint64_t ejections;	/* endpoints taken out of rotation */
	unsigned nendpoints;
	struct {
		bool in_rotation;
		uint64_t sent;		/* sends to it, retries included */
		uint64_t ok;		/* calls it answered OK */
		uint32_t inflight;
		bool ready;		/* in rotation, a connection up */
		uint64_t checks;	/* health checks (PINGs) ended */
		uint64_t checks_failed;	/* of which no PONG in time */
		uint64_t rtt_ns;	/* of the last PONG, 0: none yet */
	} endpoint[ZC_RPC_BALANCER_MAX];
	uint64_t waited;	/* calls that waited for ready */
	uint32_t waiting;	/* calls waiting for ready now */
};

/* Any thread.  Snapshot of the counters (endpoints in config order). */
ZC_API void zc_rpc_balancer_stats(const struct zc_rpc_balancer *b,
				  struct zc_rpc_balancer_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* ZCRPC_RPC_H */
