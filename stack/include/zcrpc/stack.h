/* SPDX-License-Identifier: MIT */
/*
 * zcrpc/stack.h - per-CPU io_uring reactors and TCP connections whose bytes
 * live in alloc/ buffers from the moment the kernel writes them until the
 * last user lets go.
 *
 * DOC: Reactors
 *
 *   A reactor is one thread, one io_uring and one alloc pool (the pool's
 *   owner thread is the reactor thread).  Every connection belongs to one
 *   reactor at a time: the one it was accepted or connected on, until
 *   zc_conn_move() hands it to another.  Its loop is:
 *
 *     reap a batch of CQEs -> run handlers (on_data, done callbacks, ...)
 *       -> zc_pool_drain() (buffers released on other threads come home)
 *       -> refill the provided-buffer ring from the pool, re-arm receives
 *       -> submit and wait (or busy-poll first, see busy_poll_us)
 *
 *   Two ways to run one:
 *     - zc_reactor_spawn(): a new thread, optionally pinned, creates and
 *       runs the reactor until zc_reactor_destroy();
 *     - zc_reactor_create() on the calling thread, which then drives it with
 *       zc_reactor_run() or, from its own event loop, with zc_reactor_fd()
 *       and zc_reactor_run_once().
 *
 * DOC: Threads
 *
 *   "Reactor thread only" functions must be called on the thread running
 *   the reactor (inside a callback, or a function queued with
 *   zc_reactor_post()/zc_reactor_queue()/zc_reactor_call()).  Functions
 *   marked "any thread" are safe everywhere.  Callbacks always run on the
 *   reactor thread.
 *
 * DOC: Receive ownership
 *
 *   The kernel writes received bytes straight into pool buffers given to
 *   it through a provided-buffer ring.  on_data() hands the user a chain of
 *   views of those buffers: the views (one reference each) now belong to
 *   the callee, who may read them, keep them, slice them, send them back
 *   (echo) or move them to another thread and release them there: a buffer
 *   released off the reactor thread goes back through the pool's deferred
 *   list and is drained at the end of the reactor's next batch.  Nothing is
 *   ever copied by the stack on this path.  Where the kernel supports it
 *   (IOU_PBUF_RING_INC), one ring buffer takes several receives, possibly
 *   of different connections, one after the other: their views share the
 *   buffer, and it goes back to the pool once the kernel has filled it and
 *   the last view is released.  Bytes next to a view may still be written
 *   by the kernel: a view's own bytes never are.
 *
 * DOC: Send ownership
 *
 *   zc_conn_send() moves a chain into the connection's send queue.  The
 *   stack keeps the views until the bytes are written to the socket and,
 *   for zero-copy sends, until every kernel notification covering them has
 *   arrived (each zero-copy send holds zc_buf_inflight_get() on every
 *   buffer it covers, dropped on its IORING_CQE_F_NOTIF completion).  Then
 *   it releases the views and calls done(arg, err).  Hence: memory behind a
 *   sent chain may be rewritten once done() has run AND the caller's own
 *   views (if it kept clones) are gone; for zc_buf_wrap() memory, once its
 *   release callback has run.
 *
 * DOC: Close
 *
 *   Every connection gets exactly one on_close(conn, err, ud), after which
 *   the stack forgets the conn pointer (it stays valid only for holders of
 *   zc_conn_get() references).  Before on_close runs, every queued send's
 *   done() has run (with 0 if fully sent, else the error) and the kernel
 *   holds no buffer of the connection any more.
 *
 * Errors are negative errno values; errno is never set; nothing aborts on
 * bad input.  A function returning an error never calls its callback.
 */
#ifndef ZCRPC_STACK_H
#define ZCRPC_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <zcrpc/alloc.h>

#ifdef __cplusplus
extern "C" {
#endif

struct zc_reactor;
struct zc_conn;
struct zc_listener;

/*
 * How a connection sends.
 * ZC_SEND_AUTO - payloads >= zc_threshold go zero-copy (IORING_OP_SEND_ZC)
 *                until the kernel reports, through a notification, that it
 *                copied them anyway (loopback, veth); the connection then
 *                switches to plain send for good.  Default.
 * ZC_SEND_COPY - always plain send (the kernel copies into the socket).
 * ZC_SEND_ZC   - always zero-copy, whatever the size and the reports.
 */
enum zc_send_mode {
	ZC_SEND_AUTO = 0,
	ZC_SEND_COPY,
	ZC_SEND_ZC,
};

/* Name of a send mode ("auto", "copy", "zc"), or NULL. */
ZC_API const char *zc_send_mode_name(enum zc_send_mode mode);
/* Parse a name back; returns 0 or -EINVAL. */
ZC_API int zc_send_mode_parse(const char *name, enum zc_send_mode *out);

/*
 * How zc_reactor_post() and the pool's kick wake a sleeping reactor.
 * ZC_WAKE_AUTO    - the measured faster one: the eventfd (see
 *                   docs/ARCHITECTURE.md for the ping-pong numbers).
 * ZC_WAKE_EVENTFD - a read of an eventfd kept armed on the ring; any
 *                   thread wakes it with one write().
 * ZC_WAKE_MSG_RING - reserved: IORING_OP_MSG_RING from the poster's own
 *                   ring measured no faster here (the cost is the
 *                   sleeping CPU's wake-up either way), so this value is
 *                   accepted and currently uses the eventfd too.
 */
enum zc_wake_mode {
	ZC_WAKE_AUTO = 0,
	ZC_WAKE_EVENTFD,
	ZC_WAKE_MSG_RING,
};

/* zc_reactor_config.flags */
enum {
	/* Do not ask for IORING_SETUP_DEFER_TASKRUN (completions then run
	 * in the kernel's task work instead of in our batches).  Embedding
	 * does not need it: zc_reactor_fd() works with the default flags. */
	ZC_REACTOR_NO_DEFER_TASKRUN = 1u << 0,
	/* Do not register pool slabs as fixed buffers (no send_zc_fixed). */
	ZC_REACTOR_NO_FIXED_BUFS = 1u << 1,
	/* One receive per ring buffer, even where the kernel could fill a
	 * buffer over several (IOU_PBUF_RING_INC, Linux 6.12). */
	ZC_REACTOR_NO_INC_BUFS = 1u << 2,
	/* No registered file table: every request names the connection's
	 * plain fd (see fixed_files). */
	ZC_REACTOR_NO_FIXED_FILES = 1u << 3,
	/*
	 * TEST ONLY, UNSAFE: treat a zero-copy send as finished at its first
	 * completion, dropping the in-flight references and calling done()
	 * before the kernel's notification.  This is the bug the seeds warn
	 * about; tests/stack use it to prove their corruption check can fail.
	 */
	ZC_REACTOR_UNSAFE_EARLY_RELEASE = 1 << 30,
};

/*
 * Reactor configuration.  A zeroed field takes the default in brackets.
 */
struct zc_reactor_config {
	/* Pin the reactor thread (zc_reactor_spawn) or the calling thread
	 * (zc_reactor_create) to CPU @cpu when @pin is true. [no pinning] */
	bool pin;
	int cpu;
	/* Submission queue entries; the CQ gets 8x as many. [256] */
	unsigned sq_entries;
	/* Bytes per pool buffer, hence per receive buffer: multiple of 4 KiB
	 * in [ZC_BUF_SIZE_MIN, ZC_BUF_SIZE_MAX]. [64 KiB] */
	size_t rxbuf_size;
	/* Buffers in the provided-buffer ring, a power of two <= 32768.
	 * The ring is consumed in order, so every buffer in it is written
	 * once per lap: its bytes are the receive path's cache footprint.
	 * Fewer, cache-resident buffers copy faster than many cold ones
	 * (docs/BENCHMARKS.md, "Receive ring depth"); raise it for many
	 * connections that each hold received buffers for long.
	 * [as many as fit ZC_RX_RING_BYTES_DEFAULT, at least
	 *  ZC_RX_RING_ENTRIES_MIN; fewer if the pool cannot hold 4x the ring] */
	unsigned rx_ring_entries;
	/* Byte cap of the reactor's pool (receive and send buffers).
	 * [max(64 MiB, 4 x rx_ring_entries x rxbuf_size)] */
	size_t pool_bytes;
	/* Pool free mode, defer cap and slab size: see alloc.h.
	 * [ZC_FREE_OWNER, ZC_DEFER_MAX_DEFAULT, 2 MiB] */
	enum zc_free_mode free_mode;
	unsigned defer_max;
	size_t slab_bytes;
	/* Spin on the completion queue for up to this many microseconds
	 * before sleeping. [0: never spin] */
	unsigned busy_poll_us;
	/* Default send mode of new connections. [ZC_SEND_AUTO] */
	enum zc_send_mode send_mode;
	/* Sends of at least this many bytes go zero-copy in AUTO mode.
	 * [ZC_ZC_THRESHOLD_DEFAULT] */
	size_t zc_threshold;
	/* Send queue cap per connection in bytes: zc_conn_send() answers
	 * -EAGAIN while the queued bytes are at or above it. [4 MiB] */
	size_t sndq_max;
	/* Receive budget per connection in bytes: received bytes handed to
	 * on_data() and not yet given back with zc_conn_recv_done().  Above
	 * it the connection stops reading (others go on) until credit comes
	 * back. [0: no budget, zc_conn_recv_done() is then optional] */
	size_t rx_budget;
	/* Most bytes one connection receives per batch: its multishot
	 * receive ends there and is re-armed at the end of the batch, so a
	 * bulk sender cannot empty the receive ring shared with every other
	 * connection of the reactor (issue 15).  Needs a kernel that takes a
	 * multishot receive's byte limit; on others receives are unlimited.
	 * Above UINT32_MAX: no limit. [rx_ring_entries x rxbuf_size / 4] */
	size_t rx_batch_bytes;
	/* SO_SNDBUF and SO_RCVBUF for every socket of this reactor (listeners
	 * too, so accepted sockets start with them), in setsockopt()'s units:
	 * the kernel doubles the value and caps it at net.core.wmem_max /
	 * rmem_max.  Setting one turns off the kernel's autotuning of that
	 * buffer, as iperf3 -w does. At most INT_MAX. [0: autotuned] */
	size_t sock_sndbuf;
	size_t sock_rcvbuf;
	/* TCP_CONGESTION for every socket of this reactor, e.g. "cubic".
	 * The string is copied. [NULL: system default] */
	const char *congestion;
	/* Wake mechanism. [ZC_WAKE_AUTO] */
	enum zc_wake_mode wake;
	/* ZC_REACTOR_* flags. [0] */
	unsigned flags;
	/* Most bytes one send request carries.  A connection with more
	 * queued sends the rest in later requests, one in flight at a time,
	 * so the kernel's work for one bulk connection's send (the copy, and
	 * on loopback the receiver's TCP work too, all run inline in the
	 * reactor's submit) stays bounded per batch, and the other
	 * connections' sends of that batch are not queued behind megabytes
	 * (issue 15).  Applies while light and heavy connections share the
	 * loop: from a batch in which one with a full slice to send (or whose
	 * receive ended at rx_batch_bytes) and one with less had work, for 64
	 * batches.  Bulk connections among themselves send whole requests
	 * (slicing cost 4 bulk streams 30% of their throughput and gave
	 * nobody anything).  At most 1 GiB. [256 KiB] */
	size_t tx_slice_bytes;
	/* Added to the niceness of the reactor thread (zc_reactor_spawn) or
	 * of the calling thread (zc_reactor_create), in [-39, 39].  A
	 * positive value lets the reactor's work yield the CPU to threads of
	 * lower niceness: 10 for a reactor that takes bulk connections
	 * (rpc.h, bulk_reactors) keeps the reactors serving small calls
	 * first in line when the CPUs are busy (docs/RELIABILITY.md).  A
	 * change the process may not make (a negative value without
	 * CAP_SYS_NICE) is logged and left out, like @pin. [0: unchanged] */
	int nice;
	/* Slots of the reactor's registered file table (io_uring's fixed
	 * files).  A connection joining the reactor (accepted, connected,
	 * moved in) takes a slot, and its receives, sends and error watch
	 * name the slot instead of the fd: the kernel skips the descriptor
	 * table lookup and the file reference of every request (fget: 1-2%
	 * of the CPU on each side at 1,000 active of 10,000 connections).  The
	 * connection keeps its fd (zc_conn_fd() and socket options are
	 * unchanged); when the table is full it just uses the fd (counted
	 * in fixed_fallbacks), and its slot is freed at close, where the
	 * peer sees the same FIN or RST as without.  A table the kernel
	 * refuses (too large for RLIMIT_NOFILE, an old kernel) is logged
	 * once and the reactor works with plain fds.  The kernel keeps 8
	 * bytes per slot, the reactor 8 more.  ZC_REACTOR_NO_FIXED_FILES
	 * turns it off.
	 * [RLIMIT_NOFILE's soft limit at creation, at most 65,536] */
	unsigned fixed_files;
};

/* Default bytes of the receive ring (16 x 64 KiB, 256 x 4 KiB) and the
 * fewest buffers a default ring holds (8 x 256 KiB). */
#define ZC_RX_RING_BYTES_DEFAULT (1u << 20)
#define ZC_RX_RING_ENTRIES_MIN 8u

/* Measured default zero-copy threshold for AUTO mode (bytes). */
#define ZC_ZC_THRESHOLD_DEFAULT (16u * 1024)

/*
 * Counters of one reactor, written by the reactor thread only.
 * zc_reactor_stats() reads them from any thread (each value is read
 * atomically; the set is not one instant).
 */
struct zc_reactor_stats {
	/* loop */
	uint64_t loops;            /* batches run */
	uint64_t cqes;             /* completions reaped */
	uint64_t sleeps;           /* waits in the kernel */
	uint64_t spins;            /* busy-poll rounds that found work */
	uint64_t spin_misses;      /* busy-poll windows that ended in sleep */
	uint64_t wakes_sent;       /* wake-ups sent to this reactor */
	uint64_t posts;            /* posted work items run */
	/* connections */
	uint64_t accepted;
	uint64_t accept_arms;      /* accepts (re)armed: one per listener,
				    * and per connection with
				    * ZC_LISTEN_ONESHOT_ACCEPT */
	uint64_t connected;
	uint64_t connect_failed;
	uint64_t closed;           /* on_close delivered */
	uint64_t conns_open;       /* live connections now */
	uint64_t conn_errors;      /* connections closed with an error */
	/* receive */
	uint64_t rx_bytes;
	uint64_t rx_cqes;          /* receive completions with data */
	uint64_t rx_arms;          /* receives (re)armed */
	uint64_t rx_enobufs;       /* receives ended by an empty ring */
	uint64_t rx_batch_limits;  /* receives ended by rx_batch_bytes */
	uint64_t rx_budget_stops;  /* receives stopped by the budget */
	uint64_t rx_ring_refills;  /* buffers given to the ring */
	uint64_t rx_buf_shared;    /* receives that left their buffer in the
				    * ring for the next (incremental ring) */
	/* send */
	uint64_t tx_bytes;
	uint64_t tx_plain;         /* plain send/sendmsg completions */
	uint64_t tx_zc;            /* SEND_ZC/SENDMSG_ZC completions */
	uint64_t tx_zc_fixed;      /* ... of which from registered buffers */
	uint64_t tx_short;         /* short sends resubmitted */
	uint64_t tx_refused;       /* zc_conn_send() answered -EAGAIN */
	uint64_t notifs;           /* zero-copy notifications */
	uint64_t notifs_copied;    /* ... reporting the kernel copied */
	uint64_t zc_to_copy;       /* AUTO connections switched to copy */
	uint64_t tx_sliced;        /* send requests cut at tx_slice_bytes */
	uint64_t prefaults;        /* large regions populated off the loop */
	/* zc_conn_move() */
	uint64_t moved_out;        /* connections handed to another reactor */
	uint64_t moved_in;         /* connections taken from another */
	/* registered file slots (fixed_files in zc_reactor_config) */
	uint64_t fixed_slots;      /* slots of the table (0: none) */
	uint64_t fixed_files;      /* connections on a slot now */
	uint64_t fixed_fallbacks;  /* connections that found no free slot
				    * (they use their plain fd) */
	uint64_t fixed_errors;     /* slot updates the kernel refused
				    * (-ENOMEM; logged once) */
	/* TLS (zcrpc/tls.h) */
	uint64_t tls_handshakes;   /* handshakes completed */
	uint64_t tls_failed;       /* handshakes failed (bad peer, verify) */
	uint64_t tls_timeouts;     /* ... of which by the deadline */
	uint64_t tls_refused;      /* accepts closed by max_handshakes */
	uint64_t tls_running;      /* handshakes running now */
	uint64_t tls_ktls;         /* connections whose keys went to kTLS */
	uint64_t tls_rec_zcrpc;    /* sessions whose records zcrpc runs
				    * (keys handed over after the handshake) */
	uint64_t tls_rec_openssl;  /* sessions left on OpenSSL's records
				    * (TLS 1.2, or hand-over not provably safe) */
	uint64_t tls_bad_records;  /* sessions closed for a bad record (tag,
				    * length, type, message) */
	uint64_t tls_peer_alerts;  /* sessions closed by a peer's fatal alert */
	uint64_t tls_key_updates;  /* KeyUpdates received */
	uint64_t tls_key_updates_sent; /* KeyUpdates we sent on our own, at
				    * key_update_records (zcrpc/tls.h) */
	uint64_t tls_rx_stalls;    /* openings stopped by an empty pool,
				    * retried once buffers come back */
	/* the reactor's pool (deferred frees, drains, kicks, ...) */
	struct zc_pool_stats pool;
};

/* -------------------------------------------------------------------------
 * Reactors
 */

/*
 * Create a reactor owned by the calling thread (which becomes its pool's
 * owner and the ring's only submitter) and pin the thread if asked.
 * Returns 0 and sets *@out, or -EINVAL (bad config), -ENOMEM, -EOPNOTSUPP
 * (the kernel lacks provided-buffer rings), or an io_uring setup error.
 * Ownership: the caller must zc_reactor_destroy() it on the same thread.
 */
ZC_API ZC_MUST_CHECK int zc_reactor_create(const struct zc_reactor_config *cfg,
					   struct zc_reactor **out);

/*
 * Start a thread (pinned if asked) that creates a reactor and runs it.
 * Returns once the reactor is ready: 0 and *@out, or the creation error
 * (then no thread is left running).  Drive it only through "any thread"
 * functions and posted work; end it with zc_reactor_destroy() from any
 * other thread.
 */
ZC_API ZC_MUST_CHECK int zc_reactor_spawn(const struct zc_reactor_config *cfg,
					  struct zc_reactor **out);

/*
 * Reactor thread only (create mode).  Run batches until zc_reactor_stop().
 * Returns 0, or a fatal io_uring error.
 */
ZC_API int zc_reactor_run(struct zc_reactor *r);

/*
 * Reactor thread only (create mode).  Run one batch: submit, wait up to
 * @timeout_us for a completion (0: do not wait, <0: wait without limit),
 * run the handlers, drain the pool, refill the ring.  Returns the number
 * of completions handled (0 on timeout), or a fatal -errno.  While the
 * pool holds memory to give back after a peak, a wait is cut to 0.5 s so
 * that the batch can trim it (returning 0 then, as on a timeout).
 */
ZC_API int zc_reactor_run_once(struct zc_reactor *r, long timeout_us);

/*
 * Reactor thread only (create mode).  An fd that polls readable when
 * zc_reactor_run_once() has work, for embedding in another event loop
 * (poll, epoll, libuv...), with the default flags: an eventfd made on the
 * first call (later calls return the same fd) and owned by the reactor.
 * Returns the fd, or -errno if it cannot be made or registered.
 *
 * The promise, kept whatever the kernel's task-work mode: once
 * zc_reactor_run_once() has returned, the fd is readable, or becomes
 * readable, for every completion, posted work item, zc_conn_recv_done()
 * resume, deferred buffer release and zc_reactor_stop() that this last
 * call did not handle.  Completions signal it through the ring (it is
 * registered with io_uring_register_eventfd); everything else is written
 * to it directly by the thread that posts, releases or stops; and
 * zc_reactor_run_once() makes it readable itself before returning when
 * work is already waiting.  Call zc_reactor_run_once() after each
 * wake-up; it consumes the fd's count.  docs/ARCHITECTURE.md, "Wake-ups",
 * has the protocol.
 */
ZC_API int zc_reactor_fd(const struct zc_reactor *r);

/* Any thread.  Make zc_reactor_run() return after its current batch.
 * No effect on a spawned reactor: its loop runs until
 * zc_reactor_destroy(). */
ZC_API void zc_reactor_stop(struct zc_reactor *r);

/*
 * Tear down: abort every connection (on_close with -ECANCELED), close the
 * listeners, wait for every kernel notification, and destroy the pool.
 * Create mode: reactor thread only.  Spawn mode: any other thread; the
 * reactor thread does the work and is joined.
 * Returns 0 (the reactor is gone), or -EBUSY when buffers of its pool are
 * still held by views elsewhere: then the connections are gone but the
 * reactor stays usable for draining (a spawned reactor's thread keeps
 * running posted work, zc_reactor_call() included, and taking back
 * released buffers); release the views and call again.
 */
ZC_API ZC_MUST_CHECK int zc_reactor_destroy(struct zc_reactor *r);

/* The reactor's pool: allocate send buffers from it on the reactor thread;
 * views of its buffers may be released anywhere. */
ZC_API struct zc_pool *zc_reactor_pool(const struct zc_reactor *r);

/* The reactor running on the calling thread, or NULL. */
ZC_API struct zc_reactor *zc_reactor_current(void);

/* Any thread.  Counter snapshot, including the pool's. */
ZC_API void zc_reactor_stats(const struct zc_reactor *r,
			     struct zc_reactor_stats *out);

/*
 * Work handed to a reactor.  Embed it in your own object; the stack links
 * it and calls @fn once on the reactor thread.  The node is the caller's
 * again when @fn starts.
 */
struct zc_work {
	struct zc_work *next; /* private to the stack */
	void (*fn)(struct zc_work *w);
};

/*
 * Any thread.  Queue @w (fn set by the caller) to run on @r's thread,
 * waking it if it sleeps.  Never fails; @w must stay valid until @fn runs.
 * Work queued to a reactor being destroyed still runs before the reactor
 * is freed.  Order: FIFO per posting thread.
 */
ZC_API void zc_reactor_queue(struct zc_reactor *r, struct zc_work *w);

/*
 * Any thread.  Like zc_reactor_queue() with a node the stack allocates.
 * Returns 0 (@fn(@arg) will run once), or -ENOMEM (it never will).
 */
ZC_API ZC_MUST_CHECK int zc_reactor_post(struct zc_reactor *r,
					 void (*fn)(void *arg), void *arg);

/*
 * Any thread but @r's own.  Run @fn(@arg) on @r's thread and wait for it;
 * returns what @fn returned.  Called on @r's thread it runs @fn inline.
 */
ZC_API int zc_reactor_call(struct zc_reactor *r, int (*fn)(void *arg),
			   void *arg);

/* -------------------------------------------------------------------------
 * Timers
 */

struct zc_timer;
/*
 * Runs once per successful zc_timer_arm(), on the reactor thread, from a
 * batch: @status 0 when the time came, or the -errno with which the kernel
 * refused the timeout (then at once, early: check the clock if it matters).
 */
typedef void (*zc_timer_fn)(struct zc_timer *t, int status);

/*
 * A one-shot timer of a reactor: an io_uring timeout at an absolute
 * CLOCK_MONOTONIC time on the reactor's own ring, so a sleeping reactor
 * wakes for it itself, with no thread of its own and no cross-thread wake
 * (zcperf --rate paces its calls with it).  Embed it in your own object;
 * it needs 16-byte alignment, which malloc() gives.
 */
struct zc_timer {
	zc_timer_fn fn;	/* the caller's: set before zc_timer_arm() */
	/* private to the stack: the kernel reads ts when the reactor
	 * submits the timeout, after zc_timer_arm() returned */
	struct {
		int64_t tv_sec, tv_nsec;
	} ts;
	bool armed;
} __attribute__((aligned(16)));

/*
 * Reactor thread only.  Arm @t: @t->fn(@t, 0) runs on @r's thread in the
 * first batch at or after @when_ns (CLOCK_MONOTONIC nanoseconds, as
 * clock_gettime() gives them; a time already past runs it in the next
 * batch).  Returns 0, or -EINVAL (@t->fn is NULL), -EBUSY (@t is armed and
 * its fn has not started yet), -ESHUTDOWN (@r is torn down).
 *
 * Ownership: from a successful arm until @fn starts, @t belongs to the
 * stack and must stay valid and untouched; when @fn starts it is the
 * caller's again, and @fn may arm it anew.  A timer still armed when @r is
 * destroyed never fires: @t is the caller's once zc_reactor_destroy()
 * returned.  On error nothing is armed and @t is unchanged.  There is no
 * cancel: a timer that is no longer wanted fires and is ignored.
 */
ZC_API ZC_MUST_CHECK int zc_timer_arm(struct zc_reactor *r, struct zc_timer *t,
				      uint64_t when_ns);

/* Any thread that owns @t.  True from a successful zc_timer_arm() until
 * @t's fn starts. */
ZC_API bool zc_timer_armed(const struct zc_timer *t);

/* -------------------------------------------------------------------------
 * Connections
 */

/*
 * Callbacks of a connection, all on the reactor thread.  The struct must
 * outlive the connection (use a static const one).
 */
struct zc_conn_ops {
	/* Outgoing connections only: the connection is established.
	 * Failure is reported through on_close() instead.  May be NULL. */
	void (*on_connect)(struct zc_conn *c, void *ud);
	/*
	 * Bytes arrived, in order.  @data's views are moved to the callee:
	 * take the struct by assignment (`mine = *data`) or release it; the
	 * stack forgets it on return.  With a receive budget, give the
	 * bytes back with zc_conn_recv_done() once consumed.  May be NULL
	 * (the bytes are released at once).
	 */
	void (*on_data)(struct zc_conn *c, struct zc_chain *data, void *ud);
	/* The send queue went below sndq_max after zc_conn_send() refused a
	 * chain.  May be NULL. */
	void (*on_writable)(struct zc_conn *c, void *ud);
	/*
	 * The peer shut its sending side (EOF).  Sends still work; call
	 * zc_conn_close() when done.  If NULL, the stack closes gracefully
	 * at EOF by itself (flush, shutdown, close).
	 */
	void (*on_eof)(struct zc_conn *c, void *ud);
	/*
	 * Exactly once per connection, last: @err is 0 after a graceful
	 * close or a clean EOF, else -errno (-ECONNRESET, -EPIPE,
	 * -ETIMEDOUT or -ECONNREFUSED for connects, -ECANCELED for
	 * zc_conn_close(ABORT) and reactor teardown, ...).  The stack drops
	 * its hold on @c after this returns.
	 */
	void (*on_close)(struct zc_conn *c, int err, void *ud);
};

/* -------------------------------------------------------------------------
 * Addresses from strings
 *
 *   "127.0.0.1:7000", "localhost:7000", "[::1]:7000", "[fe80::1%eth0]:7000"
 *   ":7000" or "*:7000" (listening only: every address, "[::]" dual stack)
 *   "unix:/run/app.sock"   a Unix domain socket file
 *   "unix:@app"            a Linux abstract Unix socket (no file)
 *
 * A port is required (a number, or a service name); an IPv6 address needs
 * its brackets.  Unix sockets carry no port; their connections always send
 * with plain send (zero-copy does not apply to them, ZC_SEND_* is ignored).
 */

/* One socket address of a family zcrpc serves (IPv4, IPv6, Unix). */
struct zc_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Candidates a client keeps from one name. */
#define ZC_ADDR_MAX 16u

/* zc_addr_resolve() flags */
enum {
	/* For listening: accept the wildcard ":port" / "*:port". */
	ZC_ADDR_PASSIVE = 1 << 0,
};

/*
 * Any thread but a reactor's for host names: a name goes through
 * getaddrinfo(), which may block on DNS (numeric addresses and unix: never
 * block).  Parse @str and write up to @max candidates to @out in the order
 * to try them: the resolver's order within each family, IPv6 and IPv4
 * alternating from the resolver's first (Happy Eyeballs, RFC 8305).
 * Returns how many (>= 1), or -EINVAL (malformed, no port, wildcard without
 * ZC_ADDR_PASSIVE), -ENAMETOOLONG (unix path), -ENOENT (the name does not
 * resolve), -EAGAIN (resolver temporarily failed), -EAFNOSUPPORT, -ENOMEM,
 * -EDEADLK (a host name, on a reactor thread).
 */
ZC_API ZC_MUST_CHECK int zc_addr_resolve(const char *str, unsigned flags,
					 struct zc_addr *out, unsigned max);

/*
 * Any thread.  Write @sa as zc_addr_resolve() reads it ("10.0.0.1:80",
 * "[::1]:80", "unix:/path", "unix:@name") into @buf, NUL-terminated.
 * Returns the length, or -ENOSPC (truncated), -EAFNOSUPPORT, -EINVAL.
 */
ZC_API int zc_addr_format(const struct sockaddr *sa, socklen_t len,
			  char *buf, size_t size);

/* zc_listen() flags */
enum {
	/* SO_REUSEPORT, so that one listener per reactor shares a port (the
	 * kernel spreads connections over them).  Beware: any process of
	 * the same user may then bind the port too and take a share of its
	 * connections.  Without it a port in use fails with -EADDRINUSE.
	 * Not for Unix sockets (-EINVAL). */
	ZC_LISTEN_REUSEPORT = 1 << 0,
	/* One single-shot accept at a time, armed again after each
	 * completion, instead of one multishot accept that stays armed: for
	 * kernels without multishot accept (before 5.19), and to measure
	 * what multishot saves (docs/BENCHMARKS.md, "Accept rate").  It
	 * costs one submission per connection.  Everything else is the
	 * same: the connections, their order of arrival to on_accept, the
	 * 10 ms pause after EMFILE/ENFILE/ENOMEM/ENOBUFS, the close.  Any
	 * family; zc_listen_fd() takes it too. */
	ZC_LISTEN_ONESHOT_ACCEPT = 1 << 1,
};

/*
 * A new connection.  Call zc_conn_set_ops() in here to receive its
 * events; a connection left without ops is closed on return.  Reception
 * starts after this returns.
 */
typedef void (*zc_accept_fn)(struct zc_listener *l, struct zc_conn *c,
			     void *ud);

/*
 * Reactor thread only.  Bind and listen on @addr (IPv4, IPv6 or Unix; port
 * 0 picks one: see zc_listener_port()) with multishot accept (single-shot
 * with ZC_LISTEN_ONESHOT_ACCEPT).  A Unix
 * socket file is created by the bind (an existing file, even a stale one,
 * fails with -EADDRINUSE: remove it first) and removed when the listener
 * closes.  Returns 0 and *@out, or -EINVAL (bad flags, REUSEPORT on Unix),
 * -EAFNOSUPPORT (another family), -EADDRINUSE, other socket -errno,
 * -ENOMEM, -ESHUTDOWN (reactor torn down by a failed destroy).  The
 * listener is the caller's until zc_listener_close() or reactor teardown.
 */
ZC_API ZC_MUST_CHECK int zc_listen(struct zc_reactor *r,
				   const struct sockaddr *addr,
				   socklen_t addrlen, unsigned flags,
				   zc_accept_fn on_accept, void *ud,
				   struct zc_listener **out);

/*
 * Reactor thread only.  Accept on @fd, a bound and listening stream socket
 * that stays the caller's: the listener works on its own dup() of it.
 * For more reactors on one socket without SO_REUSEPORT (each accepts part
 * of the connections), or a socket inherited from a service manager.
 * @flags: 0 or ZC_LISTEN_ONESHOT_ACCEPT (the socket's options, such as
 * SO_REUSEPORT, are the caller's to set before it binds).  Returns 0 and
 * *@out, or -EINVAL (not a listening stream socket, another flag), a
 * dup() error, -ENOMEM, -ESHUTDOWN.  Owned as zc_listen()'s.
 */
ZC_API ZC_MUST_CHECK int zc_listen_fd(struct zc_reactor *r, int fd,
				      unsigned flags, zc_accept_fn on_accept,
				      void *ud, struct zc_listener **out);

/* Bound port of a listener, host order, 0 for Unix sockets (any
 * thread). */
ZC_API uint16_t zc_listener_port(const struct zc_listener *l);
/* Its socket, for getsockname() and zc_listen_fd() (do not accept on it
 * or close it). */
ZC_API int zc_listener_fd(const struct zc_listener *l);

/* Reactor thread only.  Stop accepting and free the listener once the
 * kernel lets go of it; existing connections are not touched. */
ZC_API void zc_listener_close(struct zc_listener *l);

/*
 * Reactor thread only.  Connect to @addr (IPv4, IPv6 or Unix; one address:
 * zc_addr_resolve() gives the candidates of a name) asynchronously, giving
 * up after @timeout_ms (0: no timeout of ours).  Returns 0 and *@out (may be NULL
 * if not wanted): then exactly one of ops->on_connect / ops->on_close
 * reports the outcome, and sends may be queued at once (they go out once
 * connected).  Returns -EINVAL, -EAFNOSUPPORT (another family), -ENOMEM,
 * -ESHUTDOWN or a socket() / setsockopt() error: nothing is called back.
 */
ZC_API ZC_MUST_CHECK int zc_connect(struct zc_reactor *r,
				    const struct sockaddr *addr,
				    socklen_t addrlen, unsigned timeout_ms,
				    const struct zc_conn_ops *ops, void *ud,
				    struct zc_conn **out);

/* Reactor thread only.  Set the callbacks and user data (accepted
 * connections get theirs this way, normally inside on_accept). */
ZC_API void zc_conn_set_ops(struct zc_conn *c, const struct zc_conn_ops *ops,
			    void *ud);
ZC_API void *zc_conn_ud(const struct zc_conn *c);
ZC_API void zc_conn_set_ud(struct zc_conn *c, void *ud);

/* Reactor thread only.  Change this connection's send mode (takes effect
 * at the next send). */
ZC_API void zc_conn_set_send_mode(struct zc_conn *c, enum zc_send_mode mode);
/* The mode now in use (AUTO connections that switched report COPY). */
ZC_API enum zc_send_mode zc_conn_send_mode(const struct zc_conn *c);

/* The socket (for getsockopt and the like; do not read, write or close
 * it: the stack owns it, and may also hold it in a registered file slot,
 * see fixed_files) and the owning reactor. */
ZC_API int zc_conn_fd(const struct zc_conn *c);
ZC_API struct zc_reactor *zc_conn_reactor(const struct zc_conn *c);

/*
 * Reactor thread only.  Queue @data for sending, moving its views into
 * the connection (on success @data is left empty and reusable).
 * @done(@arg, err), if not NULL, runs exactly once on the reactor thread
 * when the stack has released those views: err 0 when every byte was
 * written and, for zero-copy sends, every notification arrived; else the
 * connection's error (the bytes may or may not have reached the peer).
 * Returns 0, or:
 *   -EAGAIN   the queue holds sndq_max bytes or more (back-pressure:
 *             on_writable() fires when it drains below);
 *   -EPIPE    the connection is closing or closed;
 *   -EINVAL   empty chain;
 *   -ENOMEM.
 * On error @data and its views stay the caller's and @done never runs.
 */
ZC_API ZC_MUST_CHECK int zc_conn_send(struct zc_conn *c, struct zc_chain *data,
				      void (*done)(void *arg, int err),
				      void *arg);

/*
 * Reactor thread only.  Copy @len bytes into buffers of the reactor's pool
 * and queue them (for small messages built on the stack).  Returns 0, or
 * the errors of zc_conn_send(), -ENOBUFS when the pool is exhausted.
 */
ZC_API ZC_MUST_CHECK int zc_conn_send_copy(struct zc_conn *c, const void *data,
					   size_t len);

/* Bytes queued and not yet released by the stack (including zero-copy
 * bytes awaiting their notification). */
ZC_API size_t zc_conn_sndq_bytes(const struct zc_conn *c);

/*
 * Any thread (hold a zc_conn_get() reference if the connection might
 * close meanwhile).  Give @n received bytes back to the receive budget;
 * a connection stopped by its budget resumes once it has room.
 * After on_close() it is a no-op that touches only @c, so a reference
 * holder may call it even after zc_reactor_destroy() returned: the stack
 * delivers on_close() only once no resume it queued is still on its way.
 */
ZC_API void zc_conn_recv_done(struct zc_conn *c, size_t n);

/* Reactor thread only.  Set this connection's receive budget in bytes
 * (0: none), overriding the reactor's rx_budget. */
ZC_API void zc_conn_set_rx_budget(struct zc_conn *c, size_t bytes);
/* Any thread.  This connection's receive budget in bytes (0: none). */
ZC_API size_t zc_conn_rx_budget(const struct zc_conn *c);

/* Any thread.  Keep the conn struct alive past on_close (for
 * zc_conn_recv_done() from consumer threads); drop with zc_conn_put(). */
ZC_API void zc_conn_get(struct zc_conn *c);
ZC_API void zc_conn_put(struct zc_conn *c);

enum zc_close_how {
	/* Stop accepting sends, flush the queue, shut down the sending side,
	 * read and drop until the peer's EOF, close. on_close err 0.  A
	 * connection still connecting is aborted instead (-ECANCELED).  A
	 * peer that never closes keeps the connection open: follow with
	 * ABORT after a deadline of your own. */
	ZC_CLOSE_GRACEFUL = 0,
	/* Drop the queue (done with -ECANCELED), reset the connection (RST),
	 * wait only for the kernel to return our buffers. */
	ZC_CLOSE_ABORT,
};

/* Reactor thread only.  Close; on_close follows later (never inside this
 * call).  Calling it again, or after EOF/errors, is harmless; ABORT may
 * follow GRACEFUL to cut it short. */
ZC_API void zc_conn_close(struct zc_conn *c, enum zc_close_how how);

/*
 * zc_conn_move()'s completion: @err 0 on the new reactor's thread, the
 * connection now its own; or, on the old reactor's thread, the
 * connection's error (-ECANCELED for an abort, -EPIPE for a graceful
 * close) when it started closing before it could leave, or -ESHUTDOWN
 * (on the new reactor's thread) when that reactor was being destroyed:
 * the connection is then closed there (on_close follows, same thread).
 */
typedef void (*zc_conn_moved_fn)(struct zc_conn *c, int err, void *arg);

/*
 * Reactor thread of @c only.  Move @c to reactor @to, for good: the stack
 * stops receiving (cancels the receive and waits for its completion),
 * waits until no request of @c is in flight on the old ring (sends under
 * way and zero-copy notifications included; a resume queued by
 * zc_conn_recv_done() has run), unlinks it, and hands it to @to through
 * its work queue, where receiving starts again from @to's buffer ring and
 * @done(@c, 0, @arg) runs first on @to's thread.  Sends queued and not
 * yet started are carried over, in order, and go out from @to.  From
 * then on every callback of @c runs on @to's thread, zc_conn_reactor()
 * is @to and the reactor-thread functions must be called there.
 *
 * Meanwhile (until @done) callbacks still run on the old thread for what
 * was under way: on_data() for bytes received before the receive ended,
 * done() of sends, on_eof(); the caller calls zc_conn_close() there if it
 * must (the move is then abandoned: @done with the error, then on_close)
 * and no other reactor-thread function.  Thread-safe calls
 * (zc_conn_recv_done(), zc_conn_get()/put(), zc_conn_rx_budget()) stay
 * valid throughout.
 *
 * Ownership: the stack's reference and the connection's ops and user
 * data go with it; views of the old reactor's buffers that the caller
 * holds (received bytes) stay valid and, released on @to's thread, go
 * home through the old pool's deferred list.  The receive budget's
 * count (bytes out) goes with the connection.
 *
 * Returns 0 (@done will run exactly once), or, with nothing changed and
 * @done never called: -EINVAL (NULL argument, @to is @c's reactor),
 * -EOPNOTSUPP (a TLS connection: its session is not moved), -EBUSY
 * (still connecting), -EPIPE (closing or closed), -EALREADY (a move is
 * under way), -ESHUTDOWN (@to is being destroyed).  @to must stay alive
 * (zc_reactor_destroy() not returned) until @done has run.
 */
ZC_API ZC_MUST_CHECK int zc_conn_move(struct zc_conn *c, struct zc_reactor *to,
				      zc_conn_moved_fn done, void *arg);

/* -------------------------------------------------------------------------
 * Logging: one process-wide sink for the messages of every layer.
 */

enum zc_log_level {
	ZC_LOG_ERROR = 0,	/* zcrpc cannot go on (a reactor loop failed) */
	ZC_LOG_WARN,		/* a connection or resource problem handled
				 * (malformed peer closed, accept retried) */
	ZC_LOG_INFO,		/* connects that failed, goaways */
	ZC_LOG_DEBUG,		/* connections opened and closed */
};

/* Room for any peer zc_conn_peer() writes, NUL included. */
#define ZC_PEER_MAX 128

struct zc_log_record {
	enum zc_log_level level;
	/* Stable short reason, a static string to match on: "protocol
	 * error", "accept failed", "connect failed", "goaway", "cannot pin",
	 * "reactor failed", "connected", "tls handshake failed", "tls
	 * session failed", "tls handshake refused", "tls records by
	 * openssl" (debug: a session kept on OpenSSL's record layer)
	 * (zcrpc/tls.h), "log"
	 * (text from older call sites). */
	const char *reason;
	/* The connection's peer as zc_addr_format() writes it, "" when the
	 * message is about no connection. */
	const char *peer;
	/* Free text with the details (errno text, fd, ...). */
	const char *msg;
};

/* Called on the thread that logs (any zcrpc thread, concurrently); the
 * record and its strings are valid during the call only.  It must not
 * call back into zcrpc. */
typedef void (*zc_log_fn)(void *arg, const struct zc_log_record *rec);

struct zc_log_sink {
	zc_log_fn fn;
	void *arg;
	/* The most verbose level passed to fn; finer messages cost one
	 * atomic load and are not formatted. */
	enum zc_log_level level;
};

/*
 * Any thread.  Send zcrpc's messages to @sink, borrowed: it must stay
 * valid and unchanged until replaced (a static const one is simplest).
 * NULL (or a NULL fn) restores the default: messages up to ZC_LOG_WARN
 * written to stderr as one line each, "zcrpc: LEVEL: PEER: REASON: TEXT".
 * A message racing the change goes to the old sink or the new one.
 */
ZC_API void zc_log_set(const struct zc_log_sink *sink);

/* "error", "warn", "info", "debug"; "?" for another value. */
ZC_API const char *zc_log_level_name(enum zc_log_level level);

/*
 * Any thread, while the connection is open (hold zc_conn_get() from
 * other threads).  Write @c's peer address as zc_addr_format() does.
 * Returns the length, or -ENOTCONN, zc_addr_format()'s errors.
 */
ZC_API int zc_conn_peer(const struct zc_conn *c, char *buf, size_t size);

/* -------------------------------------------------------------------------
 * Echo mode: the smallest server on the stack.  Every byte received is
 * sent back from the receive buffers themselves (views, no copy; zero-copy
 * send above the threshold).  EOF closes gracefully after the echo.
 */

/* Reactor thread only.  Serve echo on an accepted or connected conn
 * (replaces its ops). */
ZC_API void zc_echo_attach(struct zc_conn *c);

/* Reactor thread only.  zc_listen() whose connections all echo. */
ZC_API ZC_MUST_CHECK int zc_echo_listen(struct zc_reactor *r,
					const struct sockaddr *addr,
					socklen_t addrlen, unsigned flags,
					struct zc_listener **out);

#ifdef __cplusplus
}
#endif

#endif /* ZCRPC_STACK_H */
