/* SPDX-License-Identifier: MIT */
/*
 * stack/reactor.c - ring setup and probes, the batch loop, cross-thread
 * work and wake-ups, spawn mode and teardown.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define ZC__SQ_DEFAULT 256u
#define ZC__RXBUF_DEFAULT (64u * 1024)
#define ZC__POOL_MIN (64ull << 20)
#define ZC__SNDQ_DEFAULT (4u << 20)
#define ZC__TX_SLICE_DEFAULT (256u << 10)
#define ZC__BATCH 64u
/* Longest sleep while connections stay dirty (e.g. starved of receive
 * buffers): returns normally wake us (a remote release onto an empty defer
 * list kicks, an owner release ends a batch), this bounds the retry
 * whatever brings the buffers back. */
#define ZC__STARVED_WAIT_US 1000

static __thread struct zc_reactor *zc__tls_reactor;

/* Cache-line aligned (user_data needs 16): the hot fields a struct groups
 * at its start (struct zc_conn) then share as few lines as they can. */
void *zc__zalloc(size_t size)
{
	size_t sz = (size + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, sz);

	if (p)
		memset(p, 0, sz);
	return p;
}

/* The test seam (internal.h): nothing happens here outside tests. */
__attribute__((weak)) void zc__test_point(struct zc_reactor *r,
					  enum zc__test_point p)
{
	(void)r;
	(void)p;
}

bool zc__on_reactor(const struct zc_reactor *r)
{
	return zc__tls_reactor == r;
}

struct zc_reactor *zc_reactor_current(void)
{
	return zc__tls_reactor;
}

struct io_uring_sqe *zc__sqe(struct zc_reactor *r)
{
	struct io_uring_sqe *sqe;

	/* A full SQ is flushed early; SUBMIT_ALL (or the retry) takes it all. */
	while (!(sqe = io_uring_get_sqe(&r->ring)))
		io_uring_submit(&r->ring);
	return sqe;
}

void zc__conn_dirty(struct zc_conn *c)
{
	struct zc_reactor *r = c->r;

	if (c->is_dirty || c->state == ZC__DONE)
		return;
	c->is_dirty = true;
	c->dirty_next = r->dirty;
	r->dirty = c;
}

/* -------------------------------------------------------------------------
 * Configuration and setup
 */

static bool is_pow2(unsigned v)
{
	return v && !(v & (v - 1));
}

static int apply_defaults(struct zc_reactor_config *c)
{
	size_t ring_bytes;

	if (!c->sq_entries)
		c->sq_entries = ZC__SQ_DEFAULT;
	if (!c->rxbuf_size)
		c->rxbuf_size = ZC__RXBUF_DEFAULT;
	if (c->rxbuf_size < ZC_BUF_SIZE_MIN || c->rxbuf_size > ZC_BUF_SIZE_MAX ||
	    c->rxbuf_size % 4096)
		return -EINVAL;
	if (!c->rx_ring_entries) {
		/* The largest power of two whose bytes fit the default. */
		c->rx_ring_entries = ZC_RX_RING_ENTRIES_MIN;
		while (c->rx_ring_entries < 32768 &&
		       (size_t)c->rx_ring_entries * 2 * c->rxbuf_size <=
			       ZC_RX_RING_BYTES_DEFAULT)
			c->rx_ring_entries *= 2;
		while (c->pool_bytes && c->rx_ring_entries > 4 &&
		       (size_t)c->rx_ring_entries * c->rxbuf_size * 4 >
			       c->pool_bytes)
			c->rx_ring_entries /= 2;
	}
	if (!is_pow2(c->rx_ring_entries) || c->rx_ring_entries > 32768)
		return -EINVAL;
	ring_bytes = (size_t)c->rx_ring_entries * c->rxbuf_size;
	if (!c->pool_bytes)
		c->pool_bytes = ring_bytes * 4 > ZC__POOL_MIN ? ring_bytes * 4 :
								ZC__POOL_MIN;
	if (c->pool_bytes < ring_bytes + c->rxbuf_size)
		return -EINVAL;
	if (!c->rx_batch_bytes)
		c->rx_batch_bytes = ring_bytes / 4;
	if (c->send_mode > ZC_SEND_ZC || c->free_mode > ZC_FREE_LOCKED ||
	    c->wake > ZC_WAKE_MSG_RING)
		return -EINVAL;
	if (!c->zc_threshold)
		c->zc_threshold = ZC_ZC_THRESHOLD_DEFAULT;
	if (!c->sndq_max)
		c->sndq_max = ZC__SNDQ_DEFAULT;
	if (!c->tx_slice_bytes)
		c->tx_slice_bytes = ZC__TX_SLICE_DEFAULT;
	if (c->tx_slice_bytes > ZC__SEND_MAX)
		return -EINVAL;
	if (c->sock_sndbuf > INT_MAX || c->sock_rcvbuf > INT_MAX)
		return -EINVAL;
	if (c->nice < -39 || c->nice > 39)
		return -EINVAL;
	return 0;
}

static int ring_setup(struct zc_reactor *r)
{
	/* Tried in order: each step drops what an older kernel rejects. */
	/* TASKRUN_FLAG: the kernel flags completions it has not run yet
	 * (IORING_SQ_TASKRUN), which an embedder's fd must not sleep on. */
	static const unsigned tries[] = {
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
			IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
			IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
			IORING_SETUP_TASKRUN_FLAG,
		0,
	};
	struct io_uring_params p;
	unsigned i;
	int ret = -EINVAL;

	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		unsigned fl = tries[i];

		if ((fl & IORING_SETUP_DEFER_TASKRUN) &&
		    (r->cfg.flags & ZC_REACTOR_NO_DEFER_TASKRUN))
			continue;
		memset(&p, 0, sizeof(p));
		p.flags = fl | IORING_SETUP_CQSIZE;
		p.cq_entries = r->cfg.sq_entries * 8;
		ret = io_uring_queue_init_params(r->cfg.sq_entries, &r->ring, &p);
		if (ret == 0) {
			if (fl & IORING_SETUP_DEFER_TASKRUN)
				r->features |= ZC__F_DEFER_TASKRUN;
			if (fl & IORING_SETUP_SINGLE_ISSUER)
				r->features |= ZC__F_SINGLE_ISSUER;
			break;
		}
		if (ret != -EINVAL)
			return ret;
	}
	if (ret)
		return ret;
	if (io_uring_register_ring_fd(&r->ring) == 1)
		r->features |= ZC__F_RING_FD;
	return 0;
}

static void probe_ops(struct zc_reactor *r)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(&r->ring);

	if (!p)
		return;
	if (io_uring_opcode_supported(p, IORING_OP_SEND_ZC))
		r->features |= ZC__F_SEND_ZC | ZC__F_ZC_REPORT;
	if (io_uring_opcode_supported(p, IORING_OP_SENDMSG_ZC))
		r->features |= ZC__F_SENDMSG_ZC;
	if (io_uring_opcode_supported(p, IORING_OP_MSG_RING))
		r->features |= ZC__F_MSG_RING;
	io_uring_free_probe(p);
	/* Multishot recv has no probe bit: assumed, and dropped by the first
	 * receive that the kernel rejects with -EINVAL. */
	r->features |= ZC__F_RECV_MULTISHOT;
	/* Likewise the multishot byte limit (see arm_recv()). */
	if (r->cfg.rx_batch_bytes <= UINT32_MAX)
		r->features |= ZC__F_RECV_MSHOT_LIM;
}

static void pool_kick(void *arg);

static void pin_self(const struct zc_reactor_config *cfg)
{
	cpu_set_t set;

	if (!cfg->pin)
		return;
	CPU_ZERO(&set);
	CPU_SET(cfg->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		zc__logp(ZC_LOG_WARN, NULL, "cannot pin",
			 "reactor thread not pinned to cpu %d", cfg->cpu);
}

/* setpriority(PRIO_PROCESS, 0) acts on the calling thread (Linux). */
static void nice_self(const struct zc_reactor_config *cfg)
{
	int now;

	if (!cfg->nice)
		return;
	errno = 0;
	now = getpriority(PRIO_PROCESS, 0);
	if ((now == -1 && errno) ||
	    setpriority(PRIO_PROCESS, 0, now + cfg->nice))
		zc__logp(ZC_LOG_WARN, NULL, "cannot renice",
			 "reactor thread niceness not changed by %d: errno %d",
			 cfg->nice, errno);
}

static void arm_wake(struct zc_reactor *r)
{
	struct io_uring_sqe *sqe;

	if (r->efd_armed)
		return;
	sqe = zc__sqe(r);
	io_uring_prep_read(sqe, r->efd, &r->efd_val, sizeof(r->efd_val), 0);
	io_uring_sqe_set_data64(sqe, zc__ud(r, ZC__OP_WAKE));
	r->efd_armed = true;
}

/* Everything but the struct itself; runs on the reactor thread. */
static int reactor_setup(struct zc_reactor *r)
{
	struct zc_pool_config pc;
	int ret;

	pin_self(&r->cfg);
	nice_self(&r->cfg);
	ret = ring_setup(r);
	if (ret)
		return ret;
	probe_ops(r);
	zc__ffiles_init(r);

	/* Blocking: io_uring answers -EAGAIN at once for reads of an
	 * O_NONBLOCK file instead of waiting for it to become readable. */
	r->efd = eventfd(0, EFD_CLOEXEC);
	if (r->efd < 0) {
		ret = -errno;
		goto err_ring;
	}

	if (!(r->cfg.flags & ZC_REACTOR_NO_FIXED_BUFS) &&
	    r->cfg.free_mode != ZC_FREE_LOCAL)
		zc__fixed_init(r);

	memset(&pc, 0, sizeof(pc));
	pc.buf_size = r->cfg.rxbuf_size;
	pc.max_bytes = r->cfg.pool_bytes;
	pc.slab_bytes = r->cfg.slab_bytes;
	pc.defer_max = r->cfg.defer_max;
	pc.free_mode = r->cfg.free_mode;
	pc.kick = pool_kick;
	pc.kick_arg = r;
	/* Always: a new slab also arms trimming (stack/trim.c). */
	pc.on_slab = zc__on_slab;
	pc.on_slab_release = zc__on_slab_release;
	pc.on_large_map = zc__on_large_map;
	pc.on_slab_arg = r;
	ret = zc_pool_create(&pc, &r->pool);
	if (ret)
		goto err_efd;

	ret = zc__rxring_init(r);
	if (ret)
		goto err_pool;
	arm_wake(r);
	zc__tls_reactor = r;
	return 0;

err_pool:
	if (zc_pool_destroy(r->pool))
		assert(0);
	r->pool = NULL;
err_efd:
	close(r->efd);
	r->efd = -1;
err_ring:
	io_uring_queue_exit(&r->ring);
	zc__ffiles_fini(r);
	free(r->fixed_ok);
	r->fixed_ok = NULL;
	return ret;
}

static struct zc_reactor *reactor_alloc(const struct zc_reactor_config *cfg,
					int *err)
{
	struct zc_reactor *r = zc__zalloc(sizeof(*r));

	*err = -ENOMEM;
	if (!r)
		return NULL;
	if (cfg)
		r->cfg = *cfg;
	*err = apply_defaults(&r->cfg);
	if (*err)
		goto err_free;
	if (r->cfg.congestion) {
		r->congestion = strdup(r->cfg.congestion);
		if (!r->congestion) {
			*err = -ENOMEM;
			goto err_free;
		}
		r->cfg.congestion = r->congestion;
	}
	r->efd = -1;
	r->embed_efd = -1;
	zc__dlist_init(&r->conns);
	zc__dlist_init(&r->listeners);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	return r;

err_free:
	free(r);
	return NULL;
}

static void reactor_free(struct zc_reactor *r)
{
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r->congestion);
	free(r);
}

int zc_reactor_create(const struct zc_reactor_config *cfg,
		      struct zc_reactor **out)
{
	struct zc_reactor *r;
	int ret;

	if (!out)
		return -EINVAL;
	r = reactor_alloc(cfg, &ret);
	if (!r)
		return ret;
	ret = reactor_setup(r);
	if (ret) {
		reactor_free(r);
		return ret;
	}
	*out = r;
	return 0;
}

/* -------------------------------------------------------------------------
 * Wake-ups and posted work
 */

/*
 * The waker's half of the Dekker pair (see "Wake-ups" in ARCHITECTURE.md):
 * our work (a posted item, a deferred buffer, stop) is published before
 * the full fence, then we read where the thread waits.  The thread's half,
 * sleep_announce(), stores that place, fences, and re-checks the work.
 * Either it sees our work, or we see it waiting and write the one fd it
 * waits on.  A pending flag per fd means "a write not yet consumed": it
 * covers later wakers, and only the fd's consumer clears it.
 */
static void wake_fd(struct zc_reactor *r, int fd, atomic_int *pending)
{
	uint64_t one = 1;

	if (atomic_exchange(pending, 1))
		return;
	__atomic_fetch_add(&r->st.wakes_sent, 1, __ATOMIC_RELAXED);
	/* Cannot block or fail: pending bounds the unread writes. */
	if (write(fd, &one, sizeof(one)) < 0)
		assert(0);
}

static void reactor_wake(struct zc_reactor *r)
{
	atomic_thread_fence(memory_order_seq_cst);
	/* Seq_cst (acquire) load: embed_efd was set before SLEEP_EMBED was
	 * first stored. */
	switch (atomic_load(&r->sleeping)) {
	case ZC__AWAKE:
		return;
	case ZC__SLEEP_EMBED:
		wake_fd(r, r->embed_efd, &r->embed_pending);
		return;
	default: /* ZC__SLEEP_RING (armed read) or ZC__SLEEP_PARKED (read(2)) */
		wake_fd(r, r->efd, &r->wake_pending);
		return;
	}
}

/*
 * The thread's half: publish where it is about to wait, fence, then look
 * for anything a waker published before it could see that.  True when
 * there is work: the caller must not wait.
 */
static bool sleep_announce(struct zc_reactor *r, enum zc__sleep where)
{
	atomic_store(&r->sleeping, where);
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load_explicit(&r->posted, memory_order_relaxed) ||
	       atomic_load_explicit(&r->stop, memory_order_relaxed) ||
	       zc_pool_pending(r->pool);
}

static void pool_kick(void *arg)
{
	reactor_wake(arg);
}

void zc_reactor_queue(struct zc_reactor *r, struct zc_work *w)
{
	struct zc_work *top = atomic_load_explicit(&r->posted,
						   memory_order_relaxed);

	do {
		w->next = top;
	} while (!atomic_compare_exchange_weak(&r->posted, &top, w));
	reactor_wake(r);
}

struct post_node {
	struct zc_work w;
	void (*fn)(void *arg);
	void *arg;
};

static void post_run(struct zc_work *w)
{
	struct post_node *n = (struct post_node *)w;
	void (*fn)(void *) = n->fn;
	void *arg = n->arg;

	free(n);
	fn(arg);
}

int zc_reactor_post(struct zc_reactor *r, void (*fn)(void *arg), void *arg)
{
	struct post_node *n;

	if (!r || !fn)
		return -EINVAL;
	n = malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->w.fn = post_run;
	n->fn = fn;
	n->arg = arg;
	zc_reactor_queue(r, &n->w);
	return 0;
}

struct call_ctx {
	struct zc_work w;
	int (*fn)(void *arg);
	void *arg;
	int rc;
	bool done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void call_run(struct zc_work *w)
{
	struct call_ctx *cc = (struct call_ctx *)w;
	int rc = cc->fn(cc->arg);

	pthread_mutex_lock(&cc->lock);
	cc->rc = rc;
	cc->done = true;
	pthread_cond_signal(&cc->cond);
	pthread_mutex_unlock(&cc->lock);
}

int zc_reactor_call(struct zc_reactor *r, int (*fn)(void *arg), void *arg)
{
	struct call_ctx cc = { .w.fn = call_run, .fn = fn, .arg = arg };
	int rc;

	if (!r || !fn)
		return -EINVAL;
	if (zc__on_reactor(r))
		return fn(arg);
	pthread_mutex_init(&cc.lock, NULL);
	pthread_cond_init(&cc.cond, NULL);
	zc_reactor_queue(r, &cc.w);
	pthread_mutex_lock(&cc.lock);
	while (!cc.done)
		pthread_cond_wait(&cc.cond, &cc.lock);
	rc = cc.rc;
	pthread_mutex_unlock(&cc.lock);
	pthread_mutex_destroy(&cc.lock);
	pthread_cond_destroy(&cc.cond);
	return rc;
}

static unsigned run_posted(struct zc_reactor *r)
{
	struct zc_work *w, *rev = NULL, *next;
	unsigned n = 0;

	if (!atomic_load_explicit(&r->posted, memory_order_relaxed))
		return 0;
	w = atomic_exchange(&r->posted, NULL);
	/* The stack is LIFO: reverse it to run in posting order. */
	for (; w; w = next) {
		next = w->next;
		w->next = rev;
		rev = w;
	}
	for (w = rev; w; w = next) {
		next = w->next;
		w->fn(w);
		n++;
	}
	ZC__STAT_ADD(r, posts, n);
	return n;
}

/* -------------------------------------------------------------------------
 * The batch loop
 */

static void handle_cqe(struct zc_reactor *r, const struct io_uring_cqe *cqe)
{
	switch (zc__ud_op(cqe->user_data)) {
	case ZC__OP_IGNORE:
		break;
	case ZC__OP_WAKE:
		if (zc__ud_obj(cqe->user_data) == r) {
			/* The write that set wake_pending is consumed: later
			 * posters must write again (see reactor_wake()). */
			atomic_store(&r->wake_pending, 0);
			r->efd_armed = false;
			if (!r->torn_down)
				arm_wake(r);
		}
		break;
	case ZC__OP_ACCEPT:
		zc__handle_accept(r, cqe);
		break;
	case ZC__OP_ACCEPT_DELAY:
		zc__handle_accept_delay(r, cqe);
		break;
	case ZC__OP_CONNECT:
		zc__handle_connect(r, cqe);
		break;
	case ZC__OP_TIMEOUT:
		zc__handle_timeout(r, cqe);
		break;
	case ZC__OP_RECV:
		zc__handle_recv(r, cqe);
		break;
	case ZC__OP_SEND:
		zc__handle_send(r, cqe);
		break;
	case ZC__OP_SEND_ZC:
		zc__handle_send_zc(r, cqe);
		break;
	case ZC__OP_POLL:
		zc__handle_poll(r, cqe);
		break;
	case ZC__OP_TLS_TIMER:
		zc__tls_handle_timer(r, cqe);
		break;
	case ZC__OP_TIMER:
		zc__handle_timer(cqe);
		break;
	case ZC__OP_FFILE:
		zc__handle_ffile(r, cqe);
		break;
	}
}

/*
 * With thousands of active connections each completion names a connection
 * whose state is cold: handled in order, every one is a miss that waits for
 * the one before.  While completion i is handled, the connection of i + 2
 * is fetched (its first two lines: struct zc_conn keeps what a completion
 * reads there), and the layer above's object for i + 1 (its ud, whose
 * address is in the line fetched the step before), so the misses overlap
 * the work.  Reading c->ud of a completion not yet handled is safe: its
 * request still counts in ops_inflight, so the connection is alive.
 */

/* The connection a receive or send completion names, else NULL. */
static const struct zc_conn *cqe_conn(const struct io_uring_cqe *cqe)
{
	enum zc__op op = zc__ud_op(cqe->user_data);

	if (op != ZC__OP_RECV && op != ZC__OP_SEND)
		return NULL;
	return zc__ud_obj(cqe->user_data);
}

static void prefetch_conn(const struct io_uring_cqe *cqe)
{
	const struct zc_conn *c = cqe_conn(cqe);

	if (c) {
		__builtin_prefetch(c);
		__builtin_prefetch((const char *)c + 64);
	}
}

static void prefetch_ahead(const struct io_uring_cqe *batch, unsigned i,
			   unsigned n)
{
	const struct zc_conn *c;

	if (i + 2 < n)
		prefetch_conn(&batch[i + 2]);
	if (i + 1 < n && (c = cqe_conn(&batch[i + 1]))) {
		__builtin_prefetch(c->ud);
		__builtin_prefetch((const char *)c->ud + 64);
	}
}

static unsigned reap(struct zc_reactor *r)
{
	struct io_uring_cqe batch[ZC__BATCH], *cqe;
	unsigned head, n, i, total = 0;

	do {
		n = 0;
		io_uring_for_each_cqe(&r->ring, head, cqe) {
			batch[n++] = *cqe;
			if (n == ZC__BATCH)
				break;
		}
		/* Copied out first: handlers may submit, and with DEFER_TASKRUN
		 * a submit can post new completions. */
		io_uring_cq_advance(&r->ring, n);
		for (i = 0; i < n && i < 2; i++)
			prefetch_conn(&batch[i]);
		for (i = 0; i < n; i++) {
			prefetch_ahead(batch, i, n);
			handle_cqe(r, &batch[i]);
		}
		total += n;
	} while (n == ZC__BATCH && total < 16 * ZC__BATCH);
	ZC__STAT_ADD(r, cqes, total);
	return total;
}

/* A connection whose service will move a full slice: its receive ended
 * at rx_batch_bytes with more waiting, or a send slice is queued. */
static bool conn_heavy(const struct zc_conn *c)
{
	return c->rx_heavy || c->sq_bytes >= c->r->cfg.tx_slice_bytes;
}

static void service_one(struct zc_conn *c)
{
	c->is_dirty = false;
	c->dirty_next = NULL;
	zc__conn_service(c);
}

/*
 * Light connections are serviced first, heavy ones after: the requests a
 * service prepares are issued in the order of the submission queue, and
 * on the next submit the kernel runs each heavy one's receive or send
 * slice inline, so a small answer queued behind them would wait for all
 * of their copies.  A heavy connection keeps is_dirty while it waits on
 * the local list, so dirtying it again meanwhile changes nothing.
 */
static void service_dirty(struct zc_reactor *r)
{
	struct zc_conn *c, *next, *heavy, **htail;
	unsigned rounds = 0;
	bool light;

	/* Services may dirty other connections (or themselves again, when
	 * starved): take the list each round, a few rounds at most. */
	while ((c = r->dirty) && rounds++ < 4) {
		r->dirty = NULL;
		heavy = NULL;
		htail = &heavy;
		light = false;
		for (; c; c = next) {
			next = c->dirty_next;
			if (c->state != ZC__DONE && conn_heavy(c)) {
				c->dirty_next = NULL;
				*htail = c;
				htail = &c->dirty_next;
				continue;
			}
			light |= c->state != ZC__DONE;
			service_one(c);
		}
		/* Light and heavy work in one batch: the light connections
		 * wait for the heavy ones' inline copies, so sends go in
		 * slices for a while (see tx_slice_bytes).  Heavy ones alone
		 * only share with each other, and slicing would cost them
		 * throughput for nobody's latency. */
		if (heavy && light)
			r->slice_until = r->batch_seq + ZC__SLICE_BATCHES;
		for (c = heavy; c; c = next) {
			next = c->dirty_next;
			service_one(c);
		}
	}
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int get_events(struct zc_reactor *r)
{
	if (r->features & ZC__F_DEFER_TASKRUN)
		return io_uring_submit_and_get_events(&r->ring);
	return io_uring_submit(&r->ring);
}

/* Spin up to busy_poll_us for a completion; true when one came. */
static bool busy_poll(struct zc_reactor *r)
{
	long long end = now_us() + r->cfg.busy_poll_us;

	do {
		get_events(r);
		if (io_uring_cq_ready(&r->ring) ||
		    atomic_load_explicit(&r->posted, memory_order_relaxed)) {
			ZC__STAT_INC(r, spins);
			return true;
		}
	} while (now_us() < end);
	ZC__STAT_INC(r, spin_misses);
	return false;
}

static int wait_events(struct zc_reactor *r, long timeout_us)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts;
	int ret;

	if (r->dirty && (timeout_us < 0 || timeout_us > ZC__STARVED_WAIT_US))
		timeout_us = ZC__STARVED_WAIT_US;
	/* A grown pool is trimmed by a batch: wake for it (stack/trim.c). */
	if (r->trim_wake && (timeout_us < 0 || timeout_us > ZC__TRIM_PERIOD_US))
		timeout_us = ZC__TRIM_PERIOD_US;
	if (r->reclaim_pending &&
	    (timeout_us < 0 || timeout_us > ZC__RECLAIM_WAIT_US))
		timeout_us = ZC__RECLAIM_WAIT_US;
	if (timeout_us == 0 || io_uring_cq_ready(&r->ring))
		return get_events(r);
	if (r->cfg.busy_poll_us && busy_poll(r))
		return 0;

	if (sleep_announce(r, ZC__SLEEP_RING)) {
		atomic_store(&r->sleeping, ZC__AWAKE);
		return get_events(r);
	}
	ZC__STAT_INC(r, sleeps);
	if (timeout_us < 0) {
		ret = io_uring_submit_and_wait(&r->ring, 1);
	} else {
		ts.tv_sec = timeout_us / 1000000;
		ts.tv_nsec = (timeout_us % 1000000) * 1000;
		ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts,
						       NULL);
	}
	atomic_store(&r->sleeping, ZC__AWAKE);
	if (ret == -ETIME || ret == -EINTR || ret == -EAGAIN || ret == -EBUSY)
		ret = 0;
	return ret < 0 ? ret : 0;
}

/*
 * One batch, in net_rx_action's order: completions and their handlers,
 * posted work, then the end-of-batch work: connection state machines,
 * deferred frees back to the pool, receive ring refill.
 */
static int reactor_batch(struct zc_reactor *r, long timeout_us)
{
	unsigned n;
	int ret;

	ret = wait_events(r, timeout_us);
	if (ret < 0)
		return ret;
	ZC__STAT_INC(r, loops);
	r->batch_seq++;
	n = reap(r);
	n += run_posted(r);
	service_dirty(r);
	zc_pool_drain(r->pool);
	zc__rxring_refill(r);
	service_dirty(r);
	zc__trim_arm_large(r);
	if (r->trim_armed)
		zc__trim_tick(r);
	zc__reclaim_tick(r, n != 0);
	return (int)n;
}

/* Completions the embedder's fd may not have been signalled for: posted
 * but not reaped, overflowed, or left for the kernel to run (TASKRUN). */
static bool ring_has_events(struct zc_reactor *r)
{
	return io_uring_cq_ready(&r->ring) ||
	       (IO_URING_READ_ONCE(*r->ring.sq.kflags) &
		(IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN));
}

int zc_reactor_run_once(struct zc_reactor *r, long timeout_us)
{
	int ret;

	atomic_store(&r->sleeping, ZC__AWAKE);
	if (r->embed_efd >= 0) {
		uint64_t v;

		/* Consumed before the batch: whatever comes later writes it
		 * again (a waker, or the ring for a new completion). */
		atomic_store(&r->embed_pending, 0);
		if (read(r->embed_efd, &v, sizeof(v)) < 0)
			assert(errno == EAGAIN);
	}
	ret = reactor_batch(r, timeout_us);
	/* An embedder sleeps on zc_reactor_fd() next: nothing may be left
	 * unsubmitted, and from now on wakers write that fd.  Work that
	 * came before they could see it makes it readable at once. */
	io_uring_submit(&r->ring);
	if (r->embed_efd >= 0) {
		zc__test_point(r, ZC__TP_EMBED_PRE_SLEEP);
		if (sleep_announce(r, ZC__SLEEP_EMBED) || ring_has_events(r))
			reactor_wake(r);
	}
	return ret;
}

int zc_reactor_run(struct zc_reactor *r)
{
	int ret = 0;

	while (!atomic_load(&r->stop)) {
		ret = reactor_batch(r, -1);
		if (ret < 0)
			break;
	}
	atomic_store(&r->stop, 0);
	return ret < 0 ? ret : 0;
}

void zc_reactor_stop(struct zc_reactor *r)
{
	/* A spawned reactor's loop ends only in zc_reactor_destroy(). */
	if (r->spawned)
		return;
	atomic_store(&r->stop, 1);
	reactor_wake(r);
}

int zc_reactor_fd(const struct zc_reactor *r)
{
	struct zc_reactor *rw = (struct zc_reactor *)r;
	int fd, ret;

	if (r->embed_efd >= 0)
		return r->embed_efd;
	/*
	 * Not the ring fd: with DEFER_TASKRUN a poll on the ring does not
	 * reliably wake for deferred completions, while an eventfd
	 * registered with the ring is signalled for those too.  Made on
	 * first use, so reactors nobody embeds pay nothing per completion.
	 */
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	ret = io_uring_register_eventfd(&rw->ring, fd);
	if (ret) {
		close(fd);
		return ret;
	}
	rw->embed_efd = fd;
	return fd;
}

struct zc_pool *zc_reactor_pool(const struct zc_reactor *r)
{
	return r->pool;
}

void zc_reactor_stats(const struct zc_reactor *r, struct zc_reactor_stats *out)
{
	const uint64_t *src = (const uint64_t *)&r->st;
	uint64_t *dst = (uint64_t *)out;
	size_t i, n = offsetof(struct zc_reactor_stats, pool) / sizeof(uint64_t);

	for (i = 0; i < n; i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	if (r->pool)
		zc_pool_stats(r->pool, &out->pool);
	else
		memset(&out->pool, 0, sizeof(out->pool));
}

/* -------------------------------------------------------------------------
 * Teardown
 */

/* Reactor thread.  Returns 0 when everything is freed but the struct. */
static int reactor_teardown(struct zc_reactor *r)
{
	int ret;

	atomic_store(&r->stop, 0);
	if (!r->torn_down) {
		/* Read by zc_conn_move() on other reactors' threads; from
		 * here on a connection moved to us is closed on arrival. */
		__atomic_store_n(&r->closing, true, __ATOMIC_RELAXED);
		zc__close_listeners(r);
		zc__abort_all(r);
		/* Wait for every connection and listener to let go: aborts
		 * end in RST, so the kernel frees our pages promptly. */
		while (!zc__dlist_empty(&r->conns) ||
		       !zc__dlist_empty(&r->listeners) || r->dirty) {
			ret = reactor_batch(r, 10000);
			if (ret < 0)
				return ret;
		}
		run_posted(r);
		zc__rxring_fini(r);
		io_uring_queue_exit(&r->ring);
		zc__ffiles_fini(r);
		free(r->fixed_ok);
		r->fixed_ok = NULL;
		r->torn_down = true;
	}
	run_posted(r);
	ret = zc_pool_destroy(r->pool);
	if (ret)
		return ret;
	r->pool = NULL;
	/* Work queued after teardown still runs: see zc_reactor_queue(). */
	run_posted(r);
	if (zc__tls_reactor == r)
		zc__tls_reactor = NULL;
	return 0;
}

static void reactor_final_free(struct zc_reactor *r)
{
	if (r->efd >= 0)
		close(r->efd);
	if (r->embed_efd >= 0)
		close(r->embed_efd);
	reactor_free(r);
}

static bool destroy_requested(struct zc_reactor *r)
{
	bool req;

	pthread_mutex_lock(&r->lock);
	req = r->destroy_req;
	pthread_mutex_unlock(&r->lock);
	return req;
}

/*
 * Spawn mode, after a teardown left the pool busy: the ring is gone, so
 * the thread waits in read(efd) itself, until the next destroy request.
 * Posted work still runs and deferred buffers still come home, woken like
 * any sleep (reactor_wake() writes efd): a kick never takes a lock.
 */
static void reactor_park(struct zc_reactor *r)
{
	uint64_t v;

	zc__test_point(r, ZC__TP_PRE_PARK);
	/* The ring's armed read died unconsumed with the ring: its pending
	 * write must not gate the next waker.  A stale count in efd only
	 * makes the first read below return at once. */
	atomic_store(&r->wake_pending, 0);
	for (;;) {
		if (!sleep_announce(r, ZC__SLEEP_PARKED) &&
		    !destroy_requested(r) &&
		    read(r->efd, &v, sizeof(v)) < 0)
			assert(errno == EINTR);
		atomic_store(&r->sleeping, ZC__AWAKE);
		atomic_store(&r->wake_pending, 0);
		if (destroy_requested(r))
			return;
		/* Buffers first: posted work may be waiting for them. */
		zc_pool_drain(r->pool);
		run_posted(r);
	}
}

static void *reactor_thread(void *arg)
{
	struct zc_reactor *r = arg;
	int ret = reactor_setup(r);

	pthread_mutex_lock(&r->lock);
	r->spawn_state = ret ? ret : 1;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	if (ret)
		return NULL;

	for (;;) {
		bool req;

		pthread_mutex_lock(&r->lock);
		req = r->destroy_req;
		pthread_mutex_unlock(&r->lock);
		if (req) {
			ret = reactor_teardown(r);
			pthread_mutex_lock(&r->lock);
			r->destroy_req = false;
			r->destroy_rc = ret;
			r->spawn_state = 2;
			pthread_cond_broadcast(&r->cond);
			if (ret == 0) {
				pthread_mutex_unlock(&r->lock);
				return NULL;
			}
			pthread_mutex_unlock(&r->lock);
			/* -EBUSY: the ring is gone, but posted work must still
			 * run and buffers released elsewhere come home, until
			 * the next zc_reactor_destroy(). */
			reactor_park(r);
			continue;
		}
		ret = reactor_batch(r, -1);
		if (ret < 0) {
			zc__logp(ZC_LOG_ERROR, NULL, "reactor failed",
				 "reactor loop stopped: %s", strerror(-ret));
			break;
		}
	}
	return NULL;
}

int zc_reactor_spawn(const struct zc_reactor_config *cfg,
		     struct zc_reactor **out)
{
	struct zc_reactor *r;
	int ret;

	if (!out)
		return -EINVAL;
	r = reactor_alloc(cfg, &ret);
	if (!r)
		return ret;
	r->spawned = true;
	ret = pthread_create(&r->thread, NULL, reactor_thread, r);
	if (ret) {
		reactor_free(r);
		return -ret;
	}
	pthread_mutex_lock(&r->lock);
	while (r->spawn_state == 0)
		pthread_cond_wait(&r->cond, &r->lock);
	ret = r->spawn_state < 0 ? r->spawn_state : 0;
	pthread_mutex_unlock(&r->lock);
	if (ret) {
		pthread_join(r->thread, NULL);
		reactor_free(r);
		return ret;
	}
	*out = r;
	return 0;
}

int zc_reactor_destroy(struct zc_reactor *r)
{
	int ret;

	if (!r)
		return -EINVAL;
	if (!r->spawned) {
		ret = reactor_teardown(r);
		if (ret)
			return ret;
		reactor_final_free(r);
		return 0;
	}
	/* Stop before the request: teardown clears stop after it sees the
	 * request, so a parked thread never finds it left set (it would not
	 * sleep).  Then wake the thread wherever it waits. */
	atomic_store(&r->stop, 1);
	pthread_mutex_lock(&r->lock);
	r->destroy_req = true;
	r->spawn_state = 1;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	reactor_wake(r);
	pthread_mutex_lock(&r->lock);
	while (r->spawn_state != 2)
		pthread_cond_wait(&r->cond, &r->lock);
	ret = r->destroy_rc;
	pthread_mutex_unlock(&r->lock);
	if (ret)
		return ret;
	pthread_join(r->thread, NULL);
	reactor_final_free(r);
	return 0;
}
