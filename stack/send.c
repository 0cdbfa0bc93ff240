/* SPDX-License-Identifier: MIT */
/*
 * stack/send.c - the send queue: one send in flight per socket, short
 * sends resumed, plain or zero-copy per request, and done() only once the
 * kernel has let go of the memory.
 *
 * Ownership of a queued chain: the entry's views hold the buffers.  A
 * zero-copy request additionally takes one in-flight reference per view it
 * covers (zc_buf_inflight_get) and counts itself in entry->notifs; both are
 * dropped on the request's IORING_CQE_F_NOTIF completion, found by its
 * user_data (the record), never by arrival order.  An entry is finished
 * (views released, done() called) when it is dequeued (all sent, or
 * failed) and no request covers it any more.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

static const char *const mode_names[] = {
	[ZC_SEND_AUTO] = "auto",
	[ZC_SEND_COPY] = "copy",
	[ZC_SEND_ZC] = "zc",
};

const char *zc_send_mode_name(enum zc_send_mode mode)
{
	if ((unsigned)mode > ZC_SEND_ZC)
		return NULL;
	return mode_names[mode];
}

int zc_send_mode_parse(const char *name, enum zc_send_mode *out)
{
	unsigned i;

	if (!name || !out)
		return -EINVAL;
	for (i = 0; i <= ZC_SEND_ZC; i++) {
		if (!strcmp(name, mode_names[i])) {
			*out = (enum zc_send_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

void zc__conn_plain_only(struct zc_conn *c)
{
	c->plain_only = true;
	c->mode = ZC_SEND_COPY;
}

void zc_conn_set_send_mode(struct zc_conn *c, enum zc_send_mode mode)
{
	if ((unsigned)mode > ZC_SEND_ZC || c->plain_only)
		return;
	c->mode = mode;
	c->zc_copied = false;
}

enum zc_send_mode zc_conn_send_mode(const struct zc_conn *c)
{
	if (c->mode == ZC_SEND_AUTO && c->zc_copied)
		return ZC_SEND_COPY;
	return c->mode;
}

size_t zc_conn_sndq_bytes(const struct zc_conn *c)
{
	return c->sq_bytes;
}

/* -------------------------------------------------------------------------
 * Queue
 */

int zc__sendq_push(struct zc_conn *c, struct zc_chain *chain,
		   void (*done)(void *arg, int err), void *arg)
{
	struct zc__sendq_ent *e = malloc(sizeof(*e));

	if (!e)
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	/* A chain moves by assignment; the caller's becomes a fresh one. */
	e->chain = *chain;
	zc_chain_init(chain);
	e->len = zc_chain_len(&e->chain);
	e->done = done;
	e->arg = arg;
	if (c->sq_tail)
		c->sq_tail->next = e;
	else
		c->sq_head = e;
	c->sq_tail = e;
	c->sq_bytes += e->len;
	zc__conn_dirty(c);
	return 0;
}

int zc_conn_send(struct zc_conn *c, struct zc_chain *data,
		 void (*done)(void *arg, int err), void *arg)
{
	if (!c || !data || !zc_chain_len(data))
		return -EINVAL;
	if (c->state != ZC__OPEN && c->state != ZC__CONNECTING)
		return -EPIPE;
	if (c->sq_bytes >= c->r->cfg.sndq_max) {
		c->want_writable = true;
		ZC__STAT_INC(c->r, tx_refused);
		return -EAGAIN;
	}
	if (c->tls)
		return zc__tls_send(c, data, done, arg);
	return zc__sendq_push(c, data, done, arg);
}

int zc_conn_send_copy(struct zc_conn *c, const void *data, size_t len)
{
	struct zc_pool *pool = c->r->pool;
	size_t bsz = zc_pool_buf_size(pool), off = 0;
	struct zc_chain ch;
	int ret = 0;

	if (!len)
		return -EINVAL;
	zc_chain_init(&ch);
	while (off < len) {
		size_t n = len - off < bsz ? len - off : bsz;
		struct zc_buf *b;
		struct zc_view v;

		ret = zc_buf_alloc(pool, &b);
		if (ret)
			goto out;
		memcpy(zc_buf_data(b), (const char *)data + off, n);
		if (zc_view_adopt(&v, b, 0, n))
			assert(0);
		ret = zc_chain_append(&ch, &v);
		if (ret) {
			zc_view_release(&v);
			goto out;
		}
		off += n;
	}
	ret = zc_conn_send(c, &ch, NULL, NULL);
out:
	zc_chain_release(&ch);
	return ret;
}

static void ent_finish(struct zc_conn *c, struct zc__sendq_ent *e)
{
	zc_chain_release(&e->chain);
	c->sq_bytes -= e->len;
	if (c->want_writable && c->sq_bytes < c->r->cfg.sndq_max) {
		c->want_writable = false;
		c->writable_due = true;
	}
	if (e->done)
		e->done(e->arg, e->err);
	free(e);
	if (c->tls && !c->sq_head)
		zc__tls_idle(c);
	zc__conn_dirty(c);
}

static struct zc__sendq_ent *ent_pop(struct zc_conn *c)
{
	struct zc__sendq_ent *e = c->sq_head;

	c->sq_head = e->next;
	if (!c->sq_head)
		c->sq_tail = NULL;
	e->next = NULL;
	e->dequeued = true;
	return e;
}

/* @n bytes from the head of the queue reached the socket. */
static void advance(struct zc_conn *c, size_t n)
{
	struct zc_reactor *r = c->r;

	ZC__STAT_ADD(r, tx_bytes, n);
	if (n < c->cur_len)
		ZC__STAT_INC(r, tx_short);
	while (n) {
		struct zc__sendq_ent *e = c->sq_head;
		size_t take = e->len - e->sent;

		if (take > n)
			take = n;
		e->sent += take;
		n -= take;
		if (e->sent == e->len) {
			ent_pop(c);
			if (!e->notifs)
				ent_finish(c, e);
		}
	}
}

/* Connection dead, nothing in flight: every queued entry fails. */
void zc__send_fail_queue(struct zc_conn *c)
{
	while (c->sq_head) {
		struct zc__sendq_ent *e = ent_pop(c);

		e->err = c->err ? c->err : -ECANCELED;
		if (!e->notifs)
			ent_finish(c, e);
	}
}

/* -------------------------------------------------------------------------
 * Requests
 */

static bool want_zc(const struct zc_conn *c, size_t len)
{
	unsigned f = c->r->features;

	if (!(f & ZC__F_SEND_ZC))
		return false;
	switch (c->mode) {
	case ZC_SEND_COPY:
		return false;
	case ZC_SEND_ZC:
		return true;
	case ZC_SEND_AUTO:
		return !c->zc_copied && len >= c->r->cfg.zc_threshold;
	}
	return false;
}

/* Fill c->iov from the queue head; returns the number of views. */
static unsigned build_iov(struct zc_conn *c, struct zc_buf **bufs,
			  size_t *total)
{
	struct zc__sendq_ent *e;
	unsigned n = 0, i;
	struct zc_reactor *r = c->r;
	size_t len = 0, max = r->batch_seq < r->slice_until ?
				      r->cfg.tx_slice_bytes : ZC__SEND_MAX;

	for (e = c->sq_head; e && n < ZC__IOV_MAX && len < max;
	     e = e->next) {
		size_t skip = e->sent;

		for (i = 0; i < zc_chain_nviews(&e->chain) && n < ZC__IOV_MAX &&
			    len < max;
		     i++) {
			const struct zc_view *v = zc_chain_view(&e->chain, i);
			size_t vl = v->len;

			if (skip >= vl) {
				skip -= vl;
				continue;
			}
			vl -= skip;
			if (vl > max - len)
				vl = max - len;
			c->iov[n].iov_base = (char *)zc_view_data(v) + skip;
			c->iov[n].iov_len = vl;
			bufs[n] = v->buf;
			n++;
			len += vl;
			skip = 0;
		}
	}
	if (len == max && max < ZC__SEND_MAX)
		ZC__STAT_INC(r, tx_sliced);
	*total = len;
	return n;
}

static struct zc__zcrec *zc_record(struct zc_conn *c, struct zc_buf **bufs,
				   unsigned n, size_t total)
{
	struct zc__zcrec *rec = zc__zalloc(sizeof(*rec));
	struct zc__sendq_ent *e;
	size_t covered = 0;
	unsigned i;

	if (!rec)
		return NULL;
	rec->c = c;
	for (i = 0; i < n; i++) {
		zc_buf_inflight_get(bufs[i]);
		rec->bufs[i] = bufs[i];
	}
	rec->nbufs = n;
	/* The entries whose bytes this request covers (at most n). */
	for (e = c->sq_head; e && covered < total; e = e->next) {
		covered += e->len - e->sent;
		e->notifs++;
		rec->ents[rec->nents++] = e;
	}
	c->zc_pending++;
	return rec;
}

void zc__send_kick(struct zc_conn *c)
{
	struct zc_reactor *r = c->r;
	struct zc_buf *bufs[ZC__IOV_MAX];
	struct io_uring_sqe *sqe;
	struct zc__zcrec *rec = NULL;
	size_t total;
	unsigned n;

	if (c->send_inflight || !c->sq_head || c->fd_closed ||
	    (c->state != ZC__OPEN && c->state != ZC__CLOSING))
		return;
	n = build_iov(c, bufs, &total);
	assert(n && total);
	if (want_zc(c, total))
		rec = zc_record(c, bufs, n, total);

	sqe = zc__sqe(r);
	if (rec) {
		unsigned zf = (r->features & ZC__F_ZC_REPORT) ?
				      IORING_SEND_ZC_REPORT_USAGE : 0;
		int slab = zc_buf_slab_index(bufs[0]);

		/* Registered slabs are this reactor's pool's: a buffer of
		 * another pool (a moved connection's, a chain built on
		 * another reactor) sends unregistered. */
		if (n == 1 && slab >= 0 && zc_buf_pool(bufs[0]) == r->pool &&
		    (unsigned)slab < r->fixed_n &&
		    r->fixed_ok[slab]) {
			io_uring_prep_send_zc_fixed(sqe, c->fd, c->iov[0].iov_base,
						    total, MSG_NOSIGNAL, zf,
						    (unsigned)slab);
			rec->fixed = true;
		} else if (n == 1 || !(r->features & ZC__F_SENDMSG_ZC)) {
			/* Without SENDMSG_ZC, one view per request. */
			io_uring_prep_send_zc(sqe, c->fd, c->iov[0].iov_base,
					      c->iov[0].iov_len, MSG_NOSIGNAL,
					      zf);
			total = c->iov[0].iov_len;
		} else {
			memset(&c->msg, 0, sizeof(c->msg));
			c->msg.msg_iov = c->iov;
			c->msg.msg_iovlen = n;
			io_uring_prep_sendmsg_zc(sqe, c->fd, &c->msg,
						 MSG_NOSIGNAL);
			sqe->ioprio |= zf;
		}
		io_uring_sqe_set_data64(sqe, zc__ud(rec, ZC__OP_SEND_ZC));
	} else if (n == 1) {
		io_uring_prep_send(sqe, c->fd, c->iov[0].iov_base, total,
				   MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, zc__ud(c, ZC__OP_SEND));
	} else {
		memset(&c->msg, 0, sizeof(c->msg));
		c->msg.msg_iov = c->iov;
		c->msg.msg_iovlen = n;
		io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, zc__ud(c, ZC__OP_SEND));
	}
	zc__sqe_conn_file(sqe, c);
	c->cur_zc = rec;
	c->cur_len = (unsigned)total;
	c->send_inflight = true;
	c->send_cancelling = false;
	c->ops_inflight++;
}

/* Common end of a plain or zero-copy request's first completion. */
static void send_result(struct zc_conn *c, int res)
{
	c->send_inflight = false;
	c->ops_inflight--;
	if (res > 0)
		advance(c, (size_t)res);
	else
		zc__conn_fail(c, res ? res : -EPIPE);
	zc__conn_dirty(c);
}

void zc__handle_send(struct zc_reactor *r, const struct io_uring_cqe *cqe)
{
	struct zc_conn *c = zc__ud_obj(cqe->user_data);

	ZC__STAT_INC(r, tx_plain);
	send_result(c, cqe->res);
}

/* Drop what a zero-copy request holds; entries it was the last to cover
 * and that are dequeued are finished. */
static void rec_release(struct zc__zcrec *rec)
{
	struct zc_conn *c = rec->c;
	unsigned i;

	if (rec->released)
		return;
	rec->released = true;
	for (i = 0; i < rec->nbufs; i++)
		zc_buf_inflight_put(rec->bufs[i]);
	for (i = 0; i < rec->nents; i++) {
		struct zc__sendq_ent *e = rec->ents[i];

		if (!--e->notifs && e->dequeued)
			ent_finish(c, e);
	}
}

static void rec_free(struct zc__zcrec *rec)
{
	struct zc_conn *c = rec->c;

	rec_release(rec);
	c->zc_pending--;
	free(rec);
	zc__conn_dirty(c);
}

void zc__handle_send_zc(struct zc_reactor *r, const struct io_uring_cqe *cqe)
{
	struct zc__zcrec *rec = zc__ud_obj(cqe->user_data);
	struct zc_conn *c = rec->c;
	int res = cqe->res;

	if (cqe->flags & IORING_CQE_F_NOTIF) {
		ZC__STAT_INC(r, notifs);
		if ((r->features & ZC__F_ZC_REPORT) &&
		    ((unsigned)res & IORING_NOTIF_USAGE_ZC_COPIED)) {
			ZC__STAT_INC(r, notifs_copied);
			if (c->mode == ZC_SEND_AUTO && !c->zc_copied) {
				c->zc_copied = true;
				ZC__STAT_INC(r, zc_to_copy);
			}
		}
		rec_free(rec);
		return;
	}

	ZC__STAT_INC(r, tx_zc);
	if (rec->fixed)
		ZC__STAT_INC(r, tx_zc_fixed);
	c->cur_zc = NULL;
	if (res == -EINVAL && (r->features & ZC__F_ZC_REPORT)) {
		/* Kernel without REPORT_USAGE: resend without it. */
		r->features &= ~ZC__F_ZC_REPORT;
		res = -EAGAIN;
	} else if (res == -EOPNOTSUPP) {
		/* Socket without zero-copy support: copy from now on. */
		c->zc_copied = true;
		c->mode = c->mode == ZC_SEND_ZC ? ZC_SEND_COPY : c->mode;
		res = -EAGAIN;
	}
	if (res == -EAGAIN) {
		c->send_inflight = false;
		c->ops_inflight--;
		zc__conn_dirty(c);
	} else {
		send_result(c, res);
	}
	/* A notification follows exactly when IORING_CQE_F_MORE is set. */
	if (!(cqe->flags & IORING_CQE_F_MORE))
		rec_free(rec);
	else if (r->cfg.flags & ZC_REACTOR_UNSAFE_EARLY_RELEASE)
		rec_release(rec);
}
