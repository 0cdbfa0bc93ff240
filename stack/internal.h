/* SPDX-License-Identifier: MIT */
/*
 * stack/internal.h - private layout of reactors and connections, shared by
 * the files of stack/ only.
 */
#ifndef ZCRPC_STACK_INTERNAL_H
#define ZCRPC_STACK_INTERNAL_H

#include <assert.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/uio.h>

#include <zcrpc/stack.h>
#include <zcrpc/tls.h>

#include "log.h"

/* Missing from liburing 2.3's headers; the kernel decides at runtime. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

/*
 * DOC: user_data encoding (the only place that knows the 64 bits)
 *
 *   63                                   4 3     0
 *   +-------------------------------------+-------+
 *   |  object pointer (16-byte aligned)   |  op   |
 *   +-------------------------------------+-------+
 *
 * The object is a reactor (WAKE), listener (ACCEPT, ACCEPT_DELAY),
 * connection (CONNECT, TIMEOUT, RECV, SEND) or zero-copy send record
 * (SEND_ZC: both its completion and its notification carry it, told apart
 * by IORING_CQE_F_NOTIF), or a connection's error watch (POLL) or TLS
 * handshake deadline (TLS_TIMER), or a user's zc_timer (TIMER), or a
 * reactor's registered file update (FFILE: only failures complete,
 * ffiles.c).
 * ZC__OP_IGNORE with a NULL object marks requests
 * whose completions carry nothing to do (cancels, msg_ring wakes).
 */
enum zc__op {
	ZC__OP_IGNORE = 0,
	ZC__OP_WAKE,
	ZC__OP_ACCEPT,
	ZC__OP_ACCEPT_DELAY,
	ZC__OP_CONNECT,
	ZC__OP_TIMEOUT,
	ZC__OP_RECV,
	ZC__OP_SEND,
	ZC__OP_SEND_ZC,
	ZC__OP_POLL,
	ZC__OP_TLS_TIMER,
	ZC__OP_TIMER,
	ZC__OP_FFILE,
};
#define ZC__UD_OP_MASK 15ull

static inline uint64_t zc__ud(const void *obj, enum zc__op op)
{
	assert(((uintptr_t)obj & ZC__UD_OP_MASK) == 0);
	return (uint64_t)(uintptr_t)obj | (uint64_t)op;
}

static inline enum zc__op zc__ud_op(uint64_t ud)
{
	return (enum zc__op)(ud & ZC__UD_OP_MASK);
}

static inline void *zc__ud_obj(uint64_t ud)
{
	return (void *)(uintptr_t)(ud & ~ZC__UD_OP_MASK);
}

/* Kernel features, decided by probes at reactor creation (or, for
 * REPORT_USAGE and MULTISHOT_RECV, by the first request that uses them). */
enum {
	ZC__F_DEFER_TASKRUN = 1u << 0,
	ZC__F_SEND_ZC = 1u << 1,
	ZC__F_SENDMSG_ZC = 1u << 2,
	ZC__F_ZC_REPORT = 1u << 3,
	ZC__F_FIXED_BUFS = 1u << 4,
	ZC__F_MSG_RING = 1u << 5,
	ZC__F_RING_FD = 1u << 6,
	ZC__F_RECV_MULTISHOT = 1u << 7,
	ZC__F_SINGLE_ISSUER = 1u << 8,
	ZC__F_RXRING_INC = 1u << 9,
	ZC__F_RECV_MSHOT_LIM = 1u << 10,
};

/* Counters: written by the reactor thread, read anywhere. */
#define ZC__STAT_ADD(r, field, n) \
	__atomic_store_n(&(r)->st.field, (r)->st.field + (n), __ATOMIC_RELAXED)
#define ZC__STAT_INC(r, field) ZC__STAT_ADD(r, field, 1)

/* Most views one send request covers. */
#define ZC__IOV_MAX 64

struct zc__dlist {
	struct zc__dlist *prev, *next;
};

/*
 * Where a reactor's thread waits, published in zc_reactor.sleeping before
 * it re-checks for work (the Dekker pair with reactor_wake()).  Each state
 * names the one thing a waker writes.
 */
enum zc__sleep {
	ZC__AWAKE = 0,     /* running a batch: wakers write nothing */
	ZC__SLEEP_RING,    /* in io_uring_enter: write efd (its read is armed) */
	ZC__SLEEP_EMBED,   /* back in the embedder's loop: write embed_efd */
	ZC__SLEEP_PARKED,  /* ring gone after -EBUSY: in read(efd) */
};

/*
 * Test seam: the reactor calls zc__test_point() where a race window of its
 * sleep protocol opens.  The library's definition is an empty weak
 * function; a test linking the stack's objects defines its own to run code
 * inside the window (tests/stack/test_wake.c).
 */
enum zc__test_point {
	ZC__TP_EMBED_PRE_SLEEP, /* run_once: batch done, not yet announced */
	ZC__TP_PRE_PARK,        /* destroy answered -EBUSY, not yet parked */
};
void zc__test_point(struct zc_reactor *r, enum zc__test_point p);

struct zc_reactor {
	struct io_uring ring;
	unsigned features;
	struct zc_reactor_config cfg; /* defaults applied */
	char *congestion;             /* cfg.congestion, copied */
	struct zc_pool *pool;

	/* Provided-buffer ring: bid i holds br_bufs[i] (our one reference)
	 * while it sits in the ring; free bids wait in br_free[].  With
	 * ZC__F_RXRING_INC the kernel fills a buffer over several receives:
	 * br_off[i] is where the next one lands. */
	struct io_uring_buf_ring *br;
	size_t br_map_len;
	unsigned br_entries;
	struct zc_buf **br_bufs;
	uint32_t *br_off;
	uint16_t *br_free;
	unsigned br_nfree;

	/* Connections that need zc__conn_service() at the end of the batch. */
	struct zc_conn *dirty;
	/* Batches run, and the batch until which sends are cut into
	 * tx_slice_bytes: set while more than one connection has work
	 * (service_dirty()); a lone bulk connection sends unsliced. */
	uint64_t batch_seq;
	uint64_t slice_until;
	struct zc__dlist conns;     /* live: not yet on_close'd */
	struct zc__dlist listeners;
	unsigned nconns;

	/* Cross-thread work and wake-ups: see "Wake-ups" in
	 * docs/ARCHITECTURE.md for the protocol, sleeper by sleeper. */
	_Atomic(struct zc_work *) posted;
	atomic_int sleeping;      /* enum zc__sleep: where the thread waits */
	/* An eventfd write not yet consumed: one covers later wakers. */
	atomic_int wake_pending;  /* efd: cleared by whoever consumes it */
	atomic_int embed_pending; /* embed_efd: cleared by run_once */
	atomic_int stop;
	int efd;
	int embed_efd;        /* zc_reactor_fd(), registered with the ring */
	uint64_t efd_val;
	bool efd_armed;

	/* Spawn mode. */
	bool spawned;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int spawn_state;     /* 0 starting, 1 running, 2 torn down, <0 error */
	int destroy_rc;
	bool destroy_req;

	/* Registered file table (ffiles.c): free slots, a stack of
	 * ff_nfree indices, and the fd each install reads at issue; NULL
	 * when the reactor has no table. */
	unsigned *ff_free;
	int *ff_fds;
	unsigned ff_nfree;

	/* Fixed buffers: slab i is registered when fixed_ok[i]. */
	uint8_t *fixed_ok;
	unsigned fixed_n;

	/* Pool trimming (trim.c): armed when a slab is mapped, disarmed when
	 * a trim leaves only the floor; next check on the coarse clock.
	 * trim_wake: an idle reactor wakes up to trim. */
	bool trim_armed;
	bool trim_wake;
	unsigned trim_idle;	/* trims in a row that gave nothing back */
	bool reclaim_pending;	/* retired large regions left to unmap */
	long long trim_next_us;

	bool torn_down;
	bool closing;         /* teardown begun: no connection moves in */
	unsigned tls_hs;      /* TLS handshakes running (tls.c) */
	/* TLS connections whose opening waits for pool buffers
	 * (c->tls_rx_wait): the ring is not refilled meanwhile (rxring.c). */
	unsigned tls_rx_waiting;
	struct zc_reactor_stats st;
};

/*
 * Pool buffers kept for TLS openings.  An opening needs a buffer besides
 * the ciphertext it opens, and only an opening gives that ciphertext back:
 * a pool whose last buffers sit in the receive ring, which no connection
 * reads while each waits to open (tls.c, rx_wait()), or in ciphertext
 * queued to send, would never see one come home.  The ring refill
 * (rxring.c) and the sealing of records (tls_bio.c) both stop short of
 * the reserve, so that whenever the pool is empty, buffers are out with
 * consumers, and come back.
 */
#define ZC__TLS_OPEN_RESERVE 2u

enum zc__conn_state {
	ZC__CONNECTING,
	ZC__OPEN,
	ZC__CLOSING, /* graceful: flushing, then shut down, then await EOF */
	ZC__DEAD,    /* error or abort: waiting for the kernel to let go */
	ZC__DONE,    /* on_close delivered */
};

/* One zc_conn_send() call. */
struct zc__sendq_ent {
	struct zc__sendq_ent *next;
	struct zc_chain chain;
	size_t len;
	size_t sent;
	unsigned notifs;   /* zero-copy records still covering it */
	bool dequeued;     /* fully sent, or failed */
	int err;
	void (*done)(void *arg, int err);
	void *arg;
};

/* One zero-copy send request, alive until its notification. */
struct zc__zcrec {
	struct zc_conn *c;
	bool released;     /* references already dropped (early release) */
	bool fixed;
	unsigned nbufs;
	unsigned nents;
	struct zc_buf *bufs[ZC__IOV_MAX];
	struct zc__sendq_ent *ents[ZC__IOV_MAX];
};

/*
 * Field order is for the cache: with thousands of active connections each
 * completion lands on a connection whose state is cold, so what a call
 * touches (receive, deliver, service, a small send) sits in the first two
 * 64-byte lines, the rest (close, move, connect, zero-copy
 * bookkeeping, the iovec array past its first entry) after.
 */
struct zc_conn {
	/* Line 0: identity, dispatch and the flags of every service. */
	struct zc_reactor *r;
	const struct zc_conn_ops *ops;
	void *ud;
	struct zc_conn *dirty_next;
	int fd;               /* the socket: ours until close_fd() */
	/* Slot of r's registered file table, or -1 (ffiles.c): requests
	 * name it instead of fd. */
	int slot;
	atomic_uint refs;     /* 1 for the stack until on_close, + users */
	/* In-flight requests on the fd (recv, send, connect, timeout). */
	unsigned ops_inflight;
	uint8_t state;        /* enum zc__conn_state: a byte keeps line 0 */
	bool is_dirty;
	bool recv_armed;
	bool recv_cancelling;
	bool recv_starved;    /* ended by an empty ring */
	bool rx_heavy;	      /* ended by rx_batch_bytes: more is waiting */
	bool eof;
	bool send_inflight;
	bool want_writable;
	bool send_cancelling;
	bool fd_closed;
	bool zc_copied;       /* AUTO switched to copy by a kernel report */
	bool eof_reported;
	bool writable_due;
	bool tls_rx_wait;     /* TLS: an opening found the pool empty; the
			       * ciphertext waits, no receive is armed, and
			       * the service retries (tls.c) */
	/* zc_conn_move() under way (move.c): set on the old reactor until
	 * the connection is handed over through move_work. */
	bool moving;

	/* Line 1: the send queue (entries not yet fully sent, in order),
	 * the request in flight, TLS, and the receive budget, shared with
	 * consumer threads. */
	struct zc__sendq_ent *sq_head, *sq_tail;
	size_t sq_bytes;      /* queued until released (zc: notified) */
	struct zc__zcrec *cur_zc;
	/* TLS state (tls.c), NULL for plaintext connections. */
	struct zc__tls *tls;
	enum zc_send_mode mode;
	unsigned cur_len;
	_Atomic size_t rx_budget;
	_Atomic size_t rx_out;

	/* Cold from here (iov[0] is a small send's, one line). */
	atomic_bool rx_paused;
	atomic_bool resume_queued;
	bool put_pending;
	bool shut_wr;
	bool aborting;
	bool connect_inflight;
	bool err_poll_armed;
	bool err_poll_fired;
	bool err_poll_cancelling;
	bool plain_only;      /* not TCP (Unix): no zero-copy, mode COPY */
	int err;
	unsigned zc_pending;  /* zero-copy records awaiting notification */
	struct iovec iov[ZC__IOV_MAX];
	struct msghdr msg;
	struct zc__dlist link; /* r->conns */
	struct zc_work resume_work;

	struct zc_reactor *move_to;
	zc_conn_moved_fn move_done;
	void *move_arg;
	struct zc_work move_work;

	/* Connect. */
	struct sockaddr_storage peer; /* read by the kernel at submit */
	struct __kernel_timespec ts;
};

struct zc_listener {
	struct zc_reactor *r;
	int fd;
	uint16_t port;
	zc_accept_fn on_accept;
	void *ud;
	struct zc_tls_ctx *tls; /* one reference, or NULL: plaintext */
	struct zc__dlist link;
	unsigned ops_inflight;
	bool closing;
	bool oneshot;         /* ZC_LISTEN_ONESHOT_ACCEPT */
	struct __kernel_timespec ts;
	char *unlink_path;    /* Unix socket file we bound, removed at free */
};

/* reactor.c */
struct io_uring_sqe *zc__sqe(struct zc_reactor *r);
void zc__conn_dirty(struct zc_conn *c);
void *zc__zalloc(size_t size);
bool zc__on_reactor(const struct zc_reactor *r);

/* rxring.c */
int zc__rxring_init(struct zc_reactor *r);
void zc__rxring_refill(struct zc_reactor *r);
void zc__rxring_fini(struct zc_reactor *r);
/*
 * A receive completion naming @bid, with @len bytes; @more is its
 * IORING_CQE_F_BUF_MORE.  Returns the buffer with one reference for the
 * caller and sets *@off to where the bytes start in it.  Without @more the
 * kernel is done with the buffer and the ring's reference is the one
 * handed over; with it the ring keeps its own and the caller gets a new
 * one.  An empty receive (@len 0, older kernels only) consumed a whole
 * buffer, except in an incremental ring, which keeps it: then NULL.
 */
struct zc_buf *zc__rxring_recv(struct zc_reactor *r, unsigned bid,
			       unsigned len, bool more, uint32_t *off);
bool zc__rxring_has_bufs(const struct zc_reactor *r);
int zc__fixed_init(struct zc_reactor *r);
int zc__on_slab(void *arg, unsigned index, void *base, size_t len);
void zc__on_slab_release(void *arg, unsigned index, void *base, size_t len);

/* Most bytes one send request may carry (the CQE result is an int). */
#define ZC__SEND_MAX (1u << 30)
/* reactor.c: batches that slicing lasts after two connections had work
 * in one batch. */
#define ZC__SLICE_BATCHES 64
/* trim.c: how long a reactor with a grown pool may sleep, in us. */
#define ZC__TRIM_PERIOD_US 500000
/* trim.c: fruitless trims in a row after which trimming is disarmed. */
#define ZC__TRIM_TRIES 4
/* trim.c, end of batch: give slabs back once a period. */
void zc__trim_tick(struct zc_reactor *r);
/* trim.c: arm the trim when the pool caches large regions. */
void zc__trim_arm_large(struct zc_reactor *r);
/* trim.c, end of batch: unmap a slice of retired large regions (a batch
 * that handled events is @busy). */
#define ZC__RECLAIM_SLICE (256u << 10)
#define ZC__RECLAIM_IDLE (16u << 20)
#define ZC__RECLAIM_WAIT_US 1000
void zc__reclaim_tick(struct zc_reactor *r, bool busy);
/* prefault.c: pool callback, a large region was mapped; regions from this
 * size are populated on an io-wq worker. */
#define ZC__PREFAULT_MIN (1u << 20)
void zc__on_large_map(void *arg, void *base, size_t len);

/* ffiles.c: the registered file table and its slots (see there). */
void zc__ffiles_init(struct zc_reactor *r);
void zc__ffiles_fini(struct zc_reactor *r);
/* @c joined r: take a slot and queue its install (no-op without a free
 * slot or table: the connection uses its plain fd). */
void zc__ffile_join(struct zc_conn *c);
/* @c leaves r (close, move): queue its slot's clearing, free the slot. */
void zc__ffile_leave(struct zc_conn *c);
void zc__handle_ffile(struct zc_reactor *r, const struct io_uring_cqe *cqe);

/* After a prep that names @c's socket: name its slot instead. */
static inline void zc__sqe_conn_file(struct io_uring_sqe *sqe,
				     const struct zc_conn *c)
{
	if (c->slot >= 0) {
		sqe->fd = c->slot;
		sqe->flags |= IOSQE_FIXED_FILE;
	}
}

/* conn.c */
struct zc_conn *zc__conn_new(struct zc_reactor *r, int fd);
/* Socket options of a new connection: 0, 1 when the socket is not TCP
 * (Unix: only the buffer sizes apply), or -errno. */
int zc__sock_setup(struct zc_reactor *r, int fd);
/* SO_SNDBUF / SO_RCVBUF from the config (listeners: before listen(), so
 * that accepted sockets inherit them).  0 or -errno. */
int zc__sock_bufs(struct zc_reactor *r, int fd);
void zc__conn_service(struct zc_conn *c);
void zc__conn_fail(struct zc_conn *c, int err);
/* Cancel the request @ud names (its completion is ignored). */
void zc__cancel_ud(struct zc_reactor *r, uint64_t ud);
/* Cancel the connection's receive, once. */
void zc__cancel_recv(struct zc_conn *c);
void zc__handle_recv(struct zc_reactor *r, const struct io_uring_cqe *cqe);
void zc__handle_connect(struct zc_reactor *r, const struct io_uring_cqe *cqe);
void zc__handle_timeout(struct zc_reactor *r, const struct io_uring_cqe *cqe);
/* stack/timer.c: a zc_timer's timeout completed. */
void zc__handle_timer(const struct io_uring_cqe *cqe);
void zc__handle_poll(struct zc_reactor *r, const struct io_uring_cqe *cqe);
void zc__abort_all(struct zc_reactor *r);
/* Hand a plaintext chain (moved) to on_data(), with the receive budget's
 * accounting; drops it if nobody listens. */
void zc__conn_deliver(struct zc_conn *c, struct zc_chain *chain);

/* move.c: zc__conn_service() of a connection being moved.  True when
 * the service stops here (still waiting, or handed over: then @c is the
 * other reactor's); false once the move is abandoned (closing). */
bool zc__move_service(struct zc_conn *c);

/* send.c */
/* Queue @chain (moved) without the sndq_max check: 0 or -ENOMEM (then
 * @chain is untouched). */
int zc__sendq_push(struct zc_conn *c, struct zc_chain *chain,
		   void (*done)(void *arg, int err), void *arg);
/* Unix sockets: every send plain (zero-copy does not apply). */
void zc__conn_plain_only(struct zc_conn *c);
void zc__send_kick(struct zc_conn *c);
void zc__send_fail_queue(struct zc_conn *c);
void zc__handle_send(struct zc_reactor *r, const struct io_uring_cqe *cqe);
void zc__handle_send_zc(struct zc_reactor *r, const struct io_uring_cqe *cqe);

/*
 * tls.c (tls_off.c without OpenSSL): hooks the connection code calls
 * only for connections with c->tls set.
 */
struct zc__tls;
/* Accepted on a TLS listener: attach a server session.  0, or -EBUSY
 * (handshake cap) / -ENOMEM: then the caller aborts the connection. */
int zc__tls_accept(struct zc_conn *c, struct zc_tls_ctx *ctx);
/* TCP connected: start the client handshake (on_connect comes later). */
void zc__tls_connected(struct zc_conn *c);
/* Ciphertext arrived: @b carries one reference, bytes [@off, +@len). */
void zc__tls_rx(struct zc_conn *c, struct zc_buf *b, uint32_t off,
		unsigned len);
/* c->tls_rx_wait: open what waits if the pool has buffers again (else
 * the wait goes on); a connection no longer OPEN just stops waiting. */
void zc__tls_rx_retry(struct zc_conn *c);
/* zc_conn_send() on a TLS connection (same contract). */
int zc__tls_send(struct zc_conn *c, struct zc_chain *data,
		 void (*done)(void *arg, int err), void *arg);
/* EOF seen: true when it ended a handshake (the connection failed). */
bool zc__tls_eof(struct zc_conn *c);
/* The send queue is empty: drop the half-filled ciphertext buffer, so
 * an idle connection pins no pool memory. */
void zc__tls_idle(struct zc_conn *c);
/* Graceful close: queue close_notify. */
void zc__tls_close_notify(struct zc_conn *c);
/* Connection dying: cancel the deadline, fail pending sends. */
void zc__tls_dead(struct zc_conn *c);
/* After on_close: free the session. */
void zc__tls_free(struct zc_conn *c);
void zc__tls_handle_timer(struct zc_reactor *r,
			  const struct io_uring_cqe *cqe);

/* listen.c */
void zc__handle_accept(struct zc_reactor *r, const struct io_uring_cqe *cqe);
void zc__handle_accept_delay(struct zc_reactor *r,
			     const struct io_uring_cqe *cqe);
void zc__close_listeners(struct zc_reactor *r);

static inline void zc__dlist_init(struct zc__dlist *h)
{
	h->prev = h->next = h;
}

static inline void zc__dlist_add(struct zc__dlist *h, struct zc__dlist *n)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}

static inline void zc__dlist_del(struct zc__dlist *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

static inline bool zc__dlist_empty(const struct zc__dlist *h)
{
	return h->next == h;
}

#define zc__container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#endif /* ZCRPC_STACK_INTERNAL_H */
