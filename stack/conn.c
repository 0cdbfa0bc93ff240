/* SPDX-License-Identifier: MIT */
/*
 * stack/conn.c - a connection's life: receive into ring buffers, the
 * receive budget, EOF, graceful and abortive close, and the single place
 * (zc__conn_service) where its state machine moves on.
 *
 * Handlers only record what happened and mark the connection dirty; at the
 * end of the batch zc__conn_service() arms receives, starts sends and
 * finishes closes.  So no handler ever frees a connection under another.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int zc__sock_bufs(struct zc_reactor *r, int fd)
{
	int snd = (int)r->cfg.sock_sndbuf, rcv = (int)r->cfg.sock_rcvbuf;

	if (snd && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd)))
		return -errno;
	if (rcv && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)))
		return -errno;
	return 0;
}

int zc__sock_setup(struct zc_reactor *r, int fd)
{
	int one = 1, ret;

	ret = zc__sock_bufs(r, fd);
	if (ret)
		return ret;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		return errno == EOPNOTSUPP ? 1 : -errno;
	if (r->congestion &&
	    setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, r->congestion,
		       (socklen_t)strlen(r->congestion)))
		return -errno;
	return 0;
}

struct zc_conn *zc__conn_new(struct zc_reactor *r, int fd)
{
	struct zc_conn *c = zc__zalloc(sizeof(*c));

	if (!c)
		return NULL;
	c->r = r;
	c->fd = fd;
	c->slot = -1;
	atomic_init(&c->refs, 1);
	c->mode = r->cfg.send_mode;
	atomic_init(&c->rx_budget, r->cfg.rx_budget);
	zc__dlist_add(&r->conns, &c->link);
	r->nconns++;
	ZC__STAT_INC(r, conns_open);
	zc__ffile_join(c);
	return c;
}

/* -------------------------------------------------------------------------
 * Accessors
 */

void zc_conn_set_ops(struct zc_conn *c, const struct zc_conn_ops *ops,
		     void *ud)
{
	c->ops = ops;
	c->ud = ud;
}

void *zc_conn_ud(const struct zc_conn *c)
{
	return c->ud;
}

void zc_conn_set_ud(struct zc_conn *c, void *ud)
{
	c->ud = ud;
}

int zc_conn_fd(const struct zc_conn *c)
{
	return c->fd;
}

struct zc_reactor *zc_conn_reactor(const struct zc_conn *c)
{
	return c->r;
}

size_t zc_conn_rx_budget(const struct zc_conn *c)
{
	return atomic_load_explicit(&c->rx_budget, memory_order_relaxed);
}

void zc_conn_set_rx_budget(struct zc_conn *c, size_t bytes)
{
	atomic_store(&c->rx_budget, bytes);
	zc__conn_dirty(c);
}

void zc_conn_get(struct zc_conn *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void zc_conn_put(struct zc_conn *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		free(c);
}

/* -------------------------------------------------------------------------
 * Receive
 */

static void arm_recv(struct zc_conn *c)
{
	struct zc_reactor *r = c->r;
	struct io_uring_sqe *sqe = zc__sqe(r);

	if (r->features & ZC__F_RECV_MULTISHOT) {
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
		/* The multishot ends after this many bytes (the kernel's
		 * optlen, file_index in older liburing): re-armed once per
		 * batch, one connection takes at most that share of the
		 * ring per batch (see rx_batch_bytes in stack.h). */
		if (r->features & ZC__F_RECV_MSHOT_LIM)
			sqe->file_index = (unsigned)r->cfg.rx_batch_bytes;
	} else
		io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
	zc__sqe_conn_file(sqe, c);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 0;
	io_uring_sqe_set_data64(sqe, zc__ud(c, ZC__OP_RECV));
	c->recv_armed = true;
	c->recv_starved = false;
	c->ops_inflight++;
	ZC__STAT_INC(r, rx_arms);
}

void zc__cancel_ud(struct zc_reactor *r, uint64_t ud)
{
	struct io_uring_sqe *sqe = zc__sqe(r);

	io_uring_prep_cancel64(sqe, ud, 0);
	io_uring_sqe_set_data64(sqe, zc__ud(NULL, ZC__OP_IGNORE));
}

void zc__cancel_recv(struct zc_conn *c)
{
	if (!c->recv_armed || c->recv_cancelling)
		return;
	c->recv_cancelling = true;
	zc__cancel_ud(c->r, zc__ud(c, ZC__OP_RECV));
}

static size_t budget_of(const struct zc_conn *c)
{
	return atomic_load_explicit(&c->rx_budget, memory_order_relaxed);
}

void zc__conn_deliver(struct zc_conn *c, struct zc_chain *chain)
{
	size_t budget, len = zc_chain_len(chain);

	if (!c->ops || !c->ops->on_data) {
		zc_chain_release(chain);
		return;
	}
	atomic_fetch_add(&c->rx_out, len);
	c->ops->on_data(c, chain, c->ud);

	budget = budget_of(c);
	if (budget && c->state == ZC__OPEN && atomic_load(&c->rx_out) >= budget &&
	    c->recv_armed && !c->recv_cancelling) {
		/* Completions already posted still arrive: the overshoot is
		 * bounded by the ring, not by the budget. */
		ZC__STAT_INC(c->r, rx_budget_stops);
		zc__cancel_recv(c);
	}
}

/* @b carries one reference for us; the bytes are [@off, @off + @len). */
static void deliver(struct zc_conn *c, struct zc_buf *b, uint32_t off,
		    unsigned len)
{
	struct zc_reactor *r = c->r;
	struct zc_chain chain;
	struct zc_view v;

	ZC__STAT_ADD(r, rx_bytes, len);
	ZC__STAT_INC(r, rx_cqes);
	if (c->state != ZC__OPEN) {
		/* Closing: the bytes are dropped. */
		zc_buf_put(b);
		return;
	}
	if (c->tls) {
		/* Ciphertext: the TLS layer delivers what it decrypts. */
		zc__tls_rx(c, b, off, len);
		return;
	}
	if (zc_view_adopt(&v, b, off, len))
		assert(0);
	zc_chain_init(&chain);
	/* An inline slot is free in a fresh chain: append cannot fail. */
	if (zc_chain_append(&chain, &v))
		assert(0);
	zc__conn_deliver(c, &chain);
}

void zc__handle_recv(struct zc_reactor *r, const struct io_uring_cqe *cqe)
{
	struct zc_conn *c = zc__ud_obj(cqe->user_data);
	bool more = cqe->flags & IORING_CQE_F_MORE;
	int res = cqe->res;

	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		uint32_t off;
		struct zc_buf *b;

		b = zc__rxring_recv(r, bid, res > 0 ? (unsigned)res : 0,
				    cqe->flags & IORING_CQE_F_BUF_MORE, &off);
		if (b && res > 0)
			deliver(c, b, off, (unsigned)res);
		else if (b)
			zc_buf_put(b);
	}
	if (!more) {
		c->recv_armed = false;
		c->recv_cancelling = false;
		c->ops_inflight--;
		/* Data and no MORE: the per-batch byte limit ended it. */
		c->rx_heavy = res > 0 && (r->features & ZC__F_RECV_MSHOT_LIM);
		if (c->rx_heavy)
			ZC__STAT_INC(r, rx_batch_limits);
	}
	if (res == 0) {
		c->eof = true;
	} else if (res == -ENOBUFS) {
		/* Back-pressure, not an error: the data waits in the socket
		 * until the ring is refilled and the receive re-armed. */
		c->recv_starved = true;
		ZC__STAT_INC(r, rx_enobufs);
	} else if (res == -EINVAL && (r->features & ZC__F_RECV_MSHOT_LIM)) {
		/* A kernel without multishot byte limits: receive without. */
		r->features &= ~ZC__F_RECV_MSHOT_LIM;
	} else if (res == -EINVAL && (r->features & ZC__F_RECV_MULTISHOT)) {
		r->features &= ~ZC__F_RECV_MULTISHOT;
	} else if (res < 0 && res != -ECANCELED) {
		zc__conn_fail(c, res);
	}
	zc__conn_dirty(c);
}

static void resume_work(struct zc_work *w)
{
	struct zc_conn *c = zc__container_of(w, struct zc_conn, resume_work);

	assert(c->state != ZC__DONE); /* finish() waits for us */
	atomic_store(&c->resume_queued, false);
	zc__conn_dirty(c);
	zc_conn_put(c);
}

void zc_conn_recv_done(struct zc_conn *c, size_t n)
{
	size_t old = atomic_load(&c->rx_out), nv;
	size_t budget;

	do {
		nv = old > n ? old - n : 0;
	} while (!atomic_compare_exchange_weak(&c->rx_out, &old, nv));
	budget = budget_of(c);
	/* Pairs with the reactor's "rx_paused = true; re-read rx_out". */
	if (!budget || nv >= budget || !atomic_load(&c->rx_paused))
		return;
	if (atomic_exchange(&c->resume_queued, true))
		return;
	zc_conn_get(c);
	c->resume_work.fn = resume_work;
	zc_reactor_queue(c->r, &c->resume_work);
}

/* True when the receive budget lets the connection read. */
static bool budget_allows(struct zc_conn *c)
{
	size_t budget = budget_of(c);

	if (!budget || atomic_load(&c->rx_out) < budget) {
		atomic_store(&c->rx_paused, false);
		return true;
	}
	atomic_store(&c->rx_paused, true);
	if (atomic_load(&c->rx_out) < budget) {
		atomic_store(&c->rx_paused, false);
		return true;
	}
	return false;
}

/*
 * A connection stopped by its budget reads nothing, so it would not learn
 * of a reset: watch the socket for errors meanwhile (one shot, so a peer's
 * FIN, which is seen when reading resumes, cannot make it spin).
 */
static void arm_err_poll(struct zc_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->err_poll_armed || c->err_poll_fired)
		return;
	sqe = zc__sqe(c->r);
	io_uring_prep_poll_add(sqe, c->fd, POLLERR | POLLHUP | POLLRDHUP);
	zc__sqe_conn_file(sqe, c);
	io_uring_sqe_set_data64(sqe, zc__ud(c, ZC__OP_POLL));
	c->err_poll_armed = true;
	c->ops_inflight++;
}

void zc__handle_poll(struct zc_reactor *r, const struct io_uring_cqe *cqe)
{
	struct zc_conn *c = zc__ud_obj(cqe->user_data);
	int err = 0;
	socklen_t len = sizeof(err);

	c->err_poll_armed = false;
	c->ops_inflight--;
	if (cqe->res > 0) {
		c->err_poll_fired = true;
		/* A reset sets the socket error; a mere FIN (or both FINs,
		 * POLLHUP) is left for the receive path to see as EOF. */
		if (!getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) && err)
			zc__conn_fail(c, -err);
	}
	zc__conn_dirty(c);
}

static void service_recv(struct zc_conn *c)
{
	if (c->recv_armed || c->eof || c->fd_closed)
		return;
	if (c->state == ZC__OPEN && c->tls_rx_wait) {
		/* TLS ciphertext waits for pool buffers to open it into: read
		 * no more meanwhile (what was read waits, bounded by the ring),
		 * and retry each batch until buffers come back, as a receive
		 * starved of ring buffers does. */
		arm_err_poll(c);
		zc__conn_dirty(c);
		return;
	}
	/* Closing connections read (and drop) until EOF, budget or not. */
	if (c->state == ZC__OPEN && !budget_allows(c)) {
		arm_err_poll(c);
		return;
	}
	if (!zc__rxring_has_bufs(c->r)) {
		/* Try again after the next refill. */
		c->recv_starved = true;
		zc__conn_dirty(c);
		return;
	}
	arm_recv(c);
}

/* -------------------------------------------------------------------------
 * Close
 */

void zc__conn_fail(struct zc_conn *c, int err)
{
	if (c->state >= ZC__DEAD)
		return;
	c->state = ZC__DEAD;
	c->err = err;
	if (err && err != -ECANCELED)
		ZC__STAT_INC(c->r, conn_errors);
	zc__conn_dirty(c);
}

void zc_conn_close(struct zc_conn *c, enum zc_close_how how)
{
	if (c->state >= ZC__DEAD)
		return;
	if (how == ZC_CLOSE_GRACEFUL && c->state == ZC__OPEN) {
		if (c->tls)
			zc__tls_close_notify(c);
		c->state = ZC__CLOSING;
		zc__conn_dirty(c);
		return;
	}
	c->aborting = true;
	zc__conn_fail(c, -ECANCELED);
}

void zc__abort_all(struct zc_reactor *r)
{
	struct zc__dlist *it;

	for (it = r->conns.next; it != &r->conns; it = it->next)
		zc_conn_close(zc__container_of(it, struct zc_conn, link),
			      ZC_CLOSE_ABORT);
}

static void close_fd(struct zc_conn *c)
{
	if (c->aborting) {
		/* Reset rather than linger: the peer learns at once, and the
		 * kernel frees (and notifies) our queued pages now. */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	/* A registered slot holds the socket too: its clearing goes out
	 * with this batch's submit (the close rule, ffiles.c). */
	zc__ffile_leave(c);
	close(c->fd);
	c->fd_closed = true;
}

static void finish(struct zc_conn *c)
{
	struct zc_reactor *r = c->r;
	int err = c->err;

	c->state = ZC__DONE;
	zc__dlist_del(&c->link);
	r->nconns--;
	ZC__STAT_ADD(r, conns_open, (uint64_t)-1);
	ZC__STAT_INC(r, closed);
	if (c->ops && c->ops->on_close)
		c->ops->on_close(c, err, c->ud);
	if (c->tls)
		zc__tls_free(c);
	/* Still on the dirty list (a callback dirtied it): the pass that
	 * pops it drops the stack's reference. */
	if (c->is_dirty)
		c->put_pending = true;
	else
		zc_conn_put(c);
}

static void service_dead(struct zc_conn *c)
{
	struct zc_reactor *r = c->r;

	zc__cancel_recv(c);
	if (c->tls)
		zc__tls_dead(c);
	if (c->err_poll_armed && !c->err_poll_cancelling) {
		c->err_poll_cancelling = true;
		zc__cancel_ud(r, zc__ud(c, ZC__OP_POLL));
	}
	if (c->connect_inflight)
		zc__cancel_ud(r, zc__ud(c, ZC__OP_CONNECT));
	if (c->send_inflight && c->aborting && !c->send_cancelling) {
		c->send_cancelling = true;
		zc__cancel_ud(r, c->cur_zc ? zc__ud(c->cur_zc, ZC__OP_SEND_ZC) :
					 zc__ud(c, ZC__OP_SEND));
	}
	if (!c->send_inflight)
		zc__send_fail_queue(c);
	if (c->ops_inflight)
		return;
	if (!c->fd_closed)
		close_fd(c);
	/* Zero-copy pages may still be in the kernel: finish only when
	 * every notification is in and every done() has run. */
	if (c->zc_pending || c->sq_head || c->sq_bytes)
		return;
	/*
	 * Close the door to resume work before on_close: once resume_queued
	 * is ours, no zc_conn_recv_done() queues to this reactor again, so
	 * a reference holder may call it after on_close, after the reactor
	 * is gone.  If a resume is on its way (its poster already owns the
	 * flag), wait for it: running, it clears the flag and dirties us.
	 */
	if (atomic_exchange(&c->resume_queued, true))
		return;
	finish(c);
}

static void service_closing(struct zc_conn *c)
{
	if (c->sq_head || c->send_inflight)
		return;
	if (!c->shut_wr) {
		c->shut_wr = true;
		if (shutdown(c->fd, SHUT_WR)) {
			zc__conn_fail(c, -errno);
			return;
		}
	}
	if (c->eof)
		zc__conn_fail(c, 0);
}

void zc__conn_service(struct zc_conn *c)
{
	if (c->state == ZC__DONE) {
		if (c->put_pending) {
			c->put_pending = false;
			zc_conn_put(c);
		}
		return;
	}
	/* Before EOF is reported: the plaintext that waits precedes it.
	 * Not OPEN any more: the wait ends (the ring is refilled again). */
	if (c->tls_rx_wait)
		zc__tls_rx_retry(c);
	if (c->state == ZC__OPEN && c->eof && !c->eof_reported &&
	    !c->tls_rx_wait) {
		c->eof_reported = true;
		if (c->tls && zc__tls_eof(c))
			; /* it ended a handshake: the connection failed */
		else if (c->ops && c->ops->on_eof)
			c->ops->on_eof(c, c->ud);
		else
			zc_conn_close(c, ZC_CLOSE_GRACEFUL);
	}
	if (c->state == ZC__OPEN && c->writable_due) {
		c->writable_due = false;
		if (c->ops && c->ops->on_writable)
			c->ops->on_writable(c, c->ud);
	}
	/* Being moved: waits for its requests, then leaves (and is no
	 * longer ours to touch); abandoned if it started closing. */
	if (c->moving && zc__move_service(c))
		return;
	switch (c->state) {
	case ZC__DONE:
	case ZC__CONNECTING:
		return;
	case ZC__OPEN:
		zc__send_kick(c);
		service_recv(c);
		return;
	case ZC__CLOSING:
		zc__send_kick(c);
		service_recv(c);
		service_closing(c);
		if (c->state != ZC__DEAD)
			return;
		/* fall through */
	case ZC__DEAD:
		service_dead(c);
		return;
	}
}

/* -------------------------------------------------------------------------
 * Connect
 */

int zc_connect(struct zc_reactor *r, const struct sockaddr *addr,
	       socklen_t addrlen, unsigned timeout_ms,
	       const struct zc_conn_ops *ops, void *ud, struct zc_conn **out)
{
	struct io_uring_sqe *sqe;
	struct zc_conn *c;
	int fd, ret;

	if (!r || !addr || addrlen > sizeof(struct sockaddr_storage) ||
	    addrlen < sizeof(sa_family_t))
		return -EINVAL;
	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6 &&
	    addr->sa_family != AF_UNIX)
		return -EAFNOSUPPORT;
	if (r->torn_down)
		return -ESHUTDOWN;
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = zc__sock_setup(r, fd);
	if (ret < 0)
		goto err_close;
	c = zc__conn_new(r, fd);
	if (!c) {
		ret = -ENOMEM;
		goto err_close;
	}
	if (ret == 1)
		zc__conn_plain_only(c);
	c->state = ZC__CONNECTING;
	c->ops = ops;
	c->ud = ud;
	memcpy(&c->peer, addr, addrlen);

	/* The connect and its linked timeout must be adjacent in the SQ. */
	if (io_uring_sq_space_left(&r->ring) < 2)
		io_uring_submit(&r->ring);
	sqe = zc__sqe(r);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&c->peer, addrlen);
	zc__sqe_conn_file(sqe, c);
	io_uring_sqe_set_data64(sqe, zc__ud(c, ZC__OP_CONNECT));
	c->connect_inflight = true;
	c->ops_inflight++;
	if (timeout_ms) {
		sqe->flags |= IOSQE_IO_LINK;
		c->ts.tv_sec = timeout_ms / 1000;
		c->ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
		sqe = zc__sqe(r);
		io_uring_prep_link_timeout(sqe, &c->ts, 0);
		io_uring_sqe_set_data64(sqe, zc__ud(c, ZC__OP_TIMEOUT));
		c->ops_inflight++;
	}
	if (out)
		*out = c;
	return 0;

err_close:
	close(fd);
	return ret;
}

void zc__handle_connect(struct zc_reactor *r, const struct io_uring_cqe *cqe)
{
	struct zc_conn *c = zc__ud_obj(cqe->user_data);

	c->ops_inflight--;
	c->connect_inflight = false;
	if (c->state != ZC__CONNECTING) {
		zc__conn_dirty(c);
		return;
	}
	if (cqe->res == 0) {
		c->state = ZC__OPEN;
		ZC__STAT_INC(r, connected);
		if (c->tls)
			zc__tls_connected(c); /* on_connect after the handshake */
		else if (c->ops && c->ops->on_connect)
			c->ops->on_connect(c, c->ud);
		zc__conn_dirty(c);
		return;
	}
	ZC__STAT_INC(r, connect_failed);
	/* Our own linked timeout is what cancels a connect. */
	zc__conn_fail(c, cqe->res == -ECANCELED ? -ETIMEDOUT : cqe->res);
}

void zc__handle_timeout(struct zc_reactor *r, const struct io_uring_cqe *cqe)
{
	struct zc_conn *c = zc__ud_obj(cqe->user_data);

	c->ops_inflight--;
	zc__conn_dirty(c);
}
