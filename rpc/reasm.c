/* SPDX-License-Identifier: MIT */
/*
 * rpc/reasm.c - received messages, and when their bytes leave the ring.
 *
 * Received bytes arrive as views of the reactor's receive-ring buffers.
 * Keeping them is free, but every view pins its whole ring buffer, and
 * the ring is refilled from one pool shared by every connection of the
 * reactor: a peer holding many views (a 64 MiB message arriving slowly,
 * many messages half sent, a partial frame left by a slow sender) can
 * drain the pool, and then nobody receives anything.  So a message keeps
 * its views only while it is cheap to; otherwise its bytes are copied into
 * memory of its own (heap, wrapped into the pool's tracker so the handler
 * still gets a chain), charged to the connection's budget by the caller,
 * and the ring buffers go back at once.
 *
 * Copy mode is also what makes reassembly linear: each fragment is one
 * memcpy at its offset, whatever the fragment sizes, and the message ends
 * as one view.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

size_t zc__chain_pinned(const struct zc_chain *c, uint32_t from)
{
	const struct zc_buf *prev =
		from && from <= c->n ? zc_chain_view(c, from - 1)->buf : NULL;
	size_t n = 0;

	for (uint32_t i = from; i < c->n; i++) {
		const struct zc_buf *b = zc_chain_view(c, i)->buf;

		/* Consecutive views of one buffer (a fragment continuing
		 * where the previous one ended, several receives into one
		 * incremental buffer) pin it once. */
		if (!zc_buf_is_external(b) && b != prev)
			n += zc_buf_capacity(b);
		prev = b;
	}
	return n;
}

int zc__chain_to_heap(struct zc_chain *c, struct zc_pool *pool)
{
	size_t len = zc_chain_len(c);
	struct zc_chain out;
	struct zc_view v;
	struct zc_buf *b;
	int ret;

	if (!len)
		return 0;
	ret = zc_buf_alloc_large(pool, len, &b);
	if (ret)
		return ret;
	zc_chain_copyout(c, 0, zc_buf_data(b), len);
	ret = zc_view_adopt(&v, b, 0, (uint32_t)len);
	if (ret) {
		zc_buf_put(b);
		return ret;
	}
	zc_chain_init(&out);
	ret = zc_chain_append(&out, &v);	/* inline slot: cannot fail */
	if (ret) {
		zc_view_release(&v);
		return ret;
	}
	zc_chain_release(c);
	*c = out;
	return 0;
}

void zc__reasm_init(struct zc__reasm *ra)
{
	memset(ra, 0, sizeof(*ra));
}

void zc__reasm_release(struct zc__reasm *ra)
{
	if (ra->heap)
		zc_buf_put(ra->heap);
	ra->heap = NULL;
}

/* Leave view mode for good: the views gathered so far are copied. */
static int to_copy_mode(struct zc__reasm *ra, struct zc_chain *msg,
			uint32_t msg_len, struct zc_pool *pool)
{
	int ret = zc_buf_alloc_large(pool, msg_len, &ra->heap);

	if (ret)
		return ret;
	zc_chain_copyout(msg, 0, zc_buf_data(ra->heap), zc_chain_len(msg));
	zc_chain_release(msg);
	ra->pinned = 0;
	return 0;
}

int zc__reasm_unpin(struct zc__reasm *ra, struct zc_chain *msg,
		    uint32_t msg_len, struct zc_pool *pool)
{
	if (ra->heap || !ra->pinned)
		return 0;
	return to_copy_mode(ra, msg, msg_len, pool);
}

int zc__reasm_add(struct zc__reasm *ra, struct zc_chain *msg,
		  struct zc_chain *rx, uint32_t len, uint32_t msg_len,
		  struct zc_pool *pool, bool keep_views)
{
	int ret;

	ra->frags++;
	if (!ra->heap && (keep_views || !msg_len)) {
		uint32_t n0 = msg->n;

		ret = zc_chain_cut(rx, len, msg);
		if (ret)
			return ret;
		ra->got += len;
		ra->pinned += zc__chain_pinned(msg, n0);
		return 0;
	}
	if (!ra->heap) {
		ret = to_copy_mode(ra, msg, msg_len, pool);
		if (ret)
			return ret;
	}
	zc_chain_copyout(rx, 0, (char *)zc_buf_data(ra->heap) + ra->got, len);
	zc_chain_consume(rx, len);
	ra->got += len;
	return 0;
}

int zc__reasm_finish(struct zc__reasm *ra, struct zc_chain *msg)
{
	struct zc_view v;
	int ret;

	if (!ra->heap)
		return 0;
	ret = zc_view_adopt(&v, ra->heap, 0, ra->got);
	if (ret)
		return ret;
	ra->heap = NULL;	/* the view holds our reference now */
	ret = zc_chain_append(msg, &v);
	if (ret)
		zc_view_release(&v);
	return ret;
}
