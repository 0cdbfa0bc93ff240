/* SPDX-License-Identifier: MIT */
/*
 * rpc/tx.c - the framing send queue of one connection.
 *
 * Messages wait in a FIFO; each flush takes the head, frames at most one
 * max_frame slice of it and, if bytes remain, puts it back at the tail.
 * That round-robin is what keeps a 100 MB answer from stalling a 100-byte
 * one: every pending message gets one frame per turn.  The window bounds
 * the bytes handed to the stack, so a large message never floods the
 * socket queue ahead of calls that arrive later.
 *
 * Payload accounting: every payload byte is counted in @queued while it
 * waits and in @in_stack from the flush that hands it to the stack until
 * that send's done(), which runs after the kernel's zero-copy notification.
 * released() reports each done() to the owner (client budget, server
 * back-pressure), and the owner's view of "bytes in flight" is exact.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Size of a heap stage, taken when the pool is empty: room for the
 * headers and small payloads of a few frames. */
#define STAGE_HEAP (16u * 1024)

struct send_ctx {
	struct zc__tx *tx;
	size_t bytes;	/* window bytes (headers included) */
	size_t payload;	/* payload bytes, for released() */
};

void zc__tx_stage_init(struct zc__tx_stage *st, struct zc_pool *pool)
{
	st->pool = pool;
	st->buf = NULL;
	st->cur = 0;
}

void zc__tx_stage_fini(struct zc__tx_stage *st)
{
	if (st->buf)
		zc_buf_put(st->buf);
	st->buf = NULL;
}

void zc__tx_stage_tick(struct zc__tx_stage *st)
{
	if (!st->used)
		zc__tx_stage_fini(st);
	st->used = false;
}

void zc__tx_init(struct zc__tx *tx, struct zc_conn *conn,
		 struct zc__tx_stage *stage, size_t window,
		 void (*released)(struct zc__tx *, size_t))
{
	memset(tx, 0, sizeof(*tx));
	tx->conn = conn;
	tx->stage = stage;
	tx->window = window;
	tx->released = released;
	tx->max_frame = ZC_FRAME_MIN;
	zc_chain_init(&tx->refused);
}

struct zc__txmsg *zc__txmsg_new(void)
{
	struct zc__txmsg *m = calloc(1, sizeof(*m));

	if (m)
		zc_chain_init(&m->body);
	return m;
}

void zc__txmsg_free(struct zc__txmsg *m)
{
	if (!m)
		return;
	if (m->backref)
		*m->backref = NULL;
	if (m->on_free)
		m->on_free(m);
	if (m->pin_acct)
		*m->pin_acct -= m->pinned;
	zc_chain_release(&m->body);
	free(m);
}

static uint32_t msg_left(const struct zc__txmsg *m)
{
	return m->small_len ? m->small_len - m->framed :
			      (uint32_t)zc_chain_len(&m->body);
}

void zc__tx_queue(struct zc__tx *tx, struct zc__txmsg *m)
{
	m->hdr.msg_len = m->small_len ? m->small_len :
					(uint32_t)zc_chain_len(&m->body);
	m->framed = 0;
	m->next = NULL;
	tx->queued += msg_left(m);
	tx->nmsgs++;
	if (tx->tail)
		tx->tail->next = m;
	else
		tx->head = m;
	tx->tail = m;
}

int zc__tx_control(struct zc__tx *tx, const struct zc_frame *hdr,
		   const void *payload, uint32_t len)
{
	struct zc__txmsg *m;

	if (len > sizeof(m->small))
		return -EINVAL;
	m = zc__txmsg_new();
	if (!m)
		return -ENOMEM;
	m->hdr = *hdr;
	if (len)
		memcpy(m->small, payload, len);
	m->small_len = len;
	zc__tx_queue(tx, m);
	return 0;
}

bool zc__tx_unqueue(struct zc__tx *tx, struct zc__txmsg *m)
{
	return !m->framed && zc__tx_remove(tx, m);
}

bool zc__tx_remove(struct zc__tx *tx, struct zc__txmsg *m)
{
	struct zc__txmsg **pp, *prev = NULL;

	for (pp = &tx->head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp != m)
			continue;
		*pp = m->next;
		if (tx->tail == m)
			tx->tail = prev;
		tx->queued -= msg_left(m);
		tx->nmsgs--;
		m->next = NULL;
		return true;
	}
	return false;
}

/* Turn this flush's run of staged bytes into one view on @out. */
static int stage_close(struct zc__tx *tx, struct zc_chain *out)
{
	struct zc_buf *run = tx->run;
	struct zc_view v;
	int ret;

	if (!run)
		return 0;
	tx->run = NULL;
	if (tx->run_end == tx->run_start) {
		zc_buf_put(run);
		return 0;
	}
	/* The view takes the run's reference. */
	ret = zc_view_adopt(&v, run, tx->run_start,
			    tx->run_end - tx->run_start);
	if (ret) {
		zc_buf_put(run);
		return ret;
	}
	ret = zc_chain_append(out, &v);
	if (ret)
		zc_view_release(&v);
	return ret;
}

/*
 * Room for @need bytes at the end of this flush's run: *@dst, where to
 * write them (the caller then calls stage_wrote()).  The run goes on
 * while the stage's cursor is still at its end; otherwise (a new stage
 * buffer, or another connection's flush wrote in between) it is closed
 * into a view and a new run starts at the cursor.  A full stage is
 * dropped (its views keep it alive until sent).
 */
static int stage_reserve(struct zc__tx *tx, struct zc_chain *out,
			 uint32_t need, uint8_t **dst)
{
	struct zc__tx_stage *st = tx->stage;
	int ret;

	if (tx->run && tx->run == st->buf && tx->run_end == st->cur &&
	    st->cur + need <= zc_buf_capacity(st->buf))
		goto out;
	ret = stage_close(tx, out);
	if (ret)
		return ret;
	/* Every view of it sent and gone: start over at its beginning, in
	 * the cache lines the last batch warmed. */
	if (st->buf && zc_buf_is_exclusive(st->buf))
		st->cur = 0;
	if (st->buf && st->cur + need > zc_buf_capacity(st->buf)) {
		zc_buf_put(st->buf);
		st->buf = NULL;
	}
	if (!st->buf) {
		/* The pool is the receive ring's too: when peers hold all
		 * of it, frames are staged in heap memory instead, so no
		 * answer (nor a HELLO) ever waits for buffers that may
		 * never come back. */
		ret = zc_buf_alloc(st->pool, &st->buf);
		if (ret)
			ret = zc_buf_alloc_large(st->pool, STAGE_HEAP,
						 &st->buf);
		if (ret)
			return ret;
		st->cur = 0;
	}
	st->used = true;
	zc_buf_get(st->buf);
	tx->run = st->buf;
	tx->run_start = tx->run_end = st->cur;
out:
	*dst = (uint8_t *)zc_buf_data(st->buf) + st->cur;
	return 0;
}

static void stage_wrote(struct zc__tx *tx, uint32_t n)
{
	tx->run_end += n;
	tx->stage->cur += n;
}

static void send_done(void *arg, int err)
{
	struct send_ctx *sc = arg;
	struct zc__tx *tx = sc->tx;

	tx->in_stack -= sc->bytes;
	if (tx->released)
		tx->released(tx, sc->payload);
	free(sc);
	if (!err && !tx->dead)
		zc__tx_flush(tx);
}

static void hand_to_stack(struct zc__tx *tx, struct zc_chain *out,
			  size_t payload)
{
	struct send_ctx *sc;
	int ret;

	if (!zc_chain_len(out))
		return;
	sc = malloc(sizeof(*sc));
	if (!sc) {
		/* Keep it as refused: the next flush retries. */
		goto refuse;
	}
	sc->tx = tx;
	sc->bytes = zc_chain_len(out);
	sc->payload = payload;
	tx->in_stack += sc->bytes;
	ret = zc_conn_send(tx->conn, out, send_done, sc);
	if (!ret)
		return;
	tx->in_stack -= sc->bytes;
	free(sc);
	if (ret == -EAGAIN || ret == -ENOMEM)
		goto refuse;
	/* -EPIPE: the connection is going; on_close follows and drops. */
	zc_chain_release(out);
	if (tx->released)
		tx->released(tx, payload);
	return;
refuse:
	tx->refused = *out;
	tx->refused_acct = payload;
	zc_chain_init(out);
}

void zc__tx_flush(struct zc__tx *tx)
{
	struct zc_chain out;
	size_t payload = 0;

	if (tx->dead)
		return;
	if (zc_chain_len(&tx->refused)) {
		out = tx->refused;
		payload = tx->refused_acct;
		zc_chain_init(&tx->refused);
		hand_to_stack(tx, &out, payload);
		if (zc_chain_len(&tx->refused))
			return;	/* still refused: on_writable retries */
		payload = 0;
	}
	zc_chain_init(&out);
	while (tx->head && tx->in_stack + zc_chain_len(&out) < tx->window) {
		struct zc__txmsg *m = tx->head;
		uint32_t left = msg_left(m);
		uint32_t n = left < tx->max_frame ? left : tx->max_frame;
		bool copy = n <= ZC__TX_COPY_MAX;
		struct zc_frame h = m->hdr;
		uint8_t *dst;

		if (stage_reserve(tx, &out, ZC_FRAME_HDR_LEN + (copy ? n : 0),
				  &dst))
			break;	/* out of memory: retry at the next done() */
		h.len = n;
		h.flags = n < left ? ZC_FF_MORE : 0;
		zc__frame_encode(dst, &h);
		if (m->small_len) {
			memcpy(dst + ZC_FRAME_HDR_LEN, m->small + m->framed, n);
			stage_wrote(tx, ZC_FRAME_HDR_LEN + n);
		} else if (copy) {
			zc_chain_copyout(&m->body, 0, dst + ZC_FRAME_HDR_LEN, n);
			zc_chain_consume(&m->body, n);
			stage_wrote(tx, ZC_FRAME_HDR_LEN + n);
		} else {
			stage_wrote(tx, ZC_FRAME_HDR_LEN);
			if (stage_close(tx, &out) ||
			    zc_chain_cut(&m->body, n, &out)) {
				/* Out of memory with a header staged: the
				 * stream cannot be repaired, drop the conn. */
				tx->dead = true;
				zc_conn_close(tx->conn, ZC_CLOSE_ABORT);
				break;
			}
		}
		m->framed += n;
		if (m->counted)
			payload += n;
		tx->queued -= n;
		tx->head = m->next;
		if (!tx->head)
			tx->tail = NULL;
		if (n < left) {
			m->next = NULL;
			if (tx->tail)
				tx->tail->next = m;
			else
				tx->head = m;
			tx->tail = m;
		} else {
			tx->nmsgs--;
			zc__txmsg_free(m);
		}
	}
	if (stage_close(tx, &out)) {
		tx->dead = true;
		zc_conn_close(tx->conn, ZC_CLOSE_ABORT);
	}
	hand_to_stack(tx, &out, payload);
	if (tx->dead)
		zc_chain_release(&out);
	if (tx->on_idle && !tx->dead && zc__tx_idle(tx))
		tx->on_idle(tx);
}

size_t zc__tx_drop(struct zc__tx *tx)
{
	size_t dropped = tx->refused_acct;

	tx->dead = true;
	while (tx->head) {
		struct zc__txmsg *m = tx->head;

		tx->head = m->next;
		if (m->counted)
			dropped += msg_left(m);
		zc__txmsg_free(m);
	}
	tx->tail = NULL;
	tx->queued = 0;
	tx->nmsgs = 0;
	zc_chain_release(&tx->refused);
	tx->refused_acct = 0;
	return dropped;
}
