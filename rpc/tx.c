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
/* Size of a connection's first stage: a header and a small payload. */
#define STAGE_FIRST (ZC_FRAME_HDR_LEN + ZC__TX_COPY_MAX)

struct send_ctx {
	struct zc__tx *tx;
	size_t bytes;	/* window bytes (headers included) */
	size_t payload;	/* payload bytes, for released() */
};

void zc__tx_init(struct zc__tx *tx, struct zc_conn *conn,
		 struct zc_pool *pool, size_t window,
		 void (*released)(struct zc__tx *, size_t))
{
	memset(tx, 0, sizeof(*tx));
	tx->conn = conn;
	tx->pool = pool;
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

/* Turn the staged bytes not yet in a view into one view on @out. */
static int stage_close(struct zc__tx *tx, struct zc_chain *out)
{
	struct zc_view v;
	int ret;

	if (!tx->stage || tx->stage_cur == tx->stage_start)
		return 0;
	ret = zc_view_init(&v, tx->stage, tx->stage_start,
			   tx->stage_cur - tx->stage_start);
	if (ret)
		return ret;
	ret = zc_chain_append(out, &v);
	if (ret) {
		zc_view_release(&v);
		return ret;
	}
	tx->stage_start = tx->stage_cur;
	return 0;
}

/* Room for @need bytes in the stage; a full stage is closed and our
 * reference dropped (its views keep it alive until sent). */
static int stage_reserve(struct zc__tx *tx, struct zc_chain *out,
			 uint32_t need)
{
	int ret;

	if (tx->stage && tx->stage_cur + need <= zc_buf_capacity(tx->stage))
		return 0;
	ret = stage_close(tx, out);
	if (ret)
		return ret;
	if (tx->stage)
		zc_buf_put(tx->stage);
	tx->stage = NULL;
	/* The pool is the receive ring's too: when peers hold all of it,
	 * answers are staged in heap memory instead, so no answer (nor a
	 * HELLO) ever waits for buffers that may never come back. */
	/* A connection's first stage (its HELLO) is a small heap buffer:
	 * a burst of accepts then costs a few KiB each instead of one pool
	 * buffer each, which the pool would keep mapped after the burst. */
	if (!tx->warm) {
		tx->warm = true;
		ret = zc_buf_alloc_large(tx->pool, STAGE_FIRST, &tx->stage);
	} else {
		ret = zc_buf_alloc(tx->pool, &tx->stage);
		if (ret)
			ret = zc_buf_alloc_large(tx->pool, STAGE_HEAP, &tx->stage);
	}
	if (ret)
		return ret;
	tx->stage_start = tx->stage_cur = 0;
	return 0;
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

		if (stage_reserve(tx, &out, ZC_FRAME_HDR_LEN + (copy ? n : 0)))
			break;	/* out of memory: retry at the next done() */
		h.len = n;
		h.flags = n < left ? ZC_FF_MORE : 0;
		dst = (uint8_t *)zc_buf_data(tx->stage) + tx->stage_cur;
		zc__frame_encode(dst, &h);
		if (m->small_len) {
			memcpy(dst + ZC_FRAME_HDR_LEN, m->small + m->framed, n);
			tx->stage_cur += ZC_FRAME_HDR_LEN + n;
		} else if (copy) {
			zc_chain_copyout(&m->body, 0, dst + ZC_FRAME_HDR_LEN, n);
			zc_chain_consume(&m->body, n);
			tx->stage_cur += ZC_FRAME_HDR_LEN + n;
		} else {
			tx->stage_cur += ZC_FRAME_HDR_LEN;
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
	/* Nothing left to frame: let the stage go (its views keep it while
	 * they are sent), so an idle connection holds no pool buffer. */
	if (!tx->head && tx->stage) {
		zc_buf_put(tx->stage);
		tx->stage = NULL;
	}
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
	if (tx->stage)
		zc_buf_put(tx->stage);
	tx->stage = NULL;
	return dropped;
}
