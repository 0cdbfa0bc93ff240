/* SPDX-License-Identifier: MIT */
/*
 * stack/echo.c - raw TCP echo: received views go straight back into the
 * send queue, so the bytes leave from the very buffers the kernel wrote.
 *
 * Memory stays bounded: bytes count against the receive budget until the
 * send queue accepts them, and the send queue is capped, so a peer that
 * sends without reading stalls only its own connection.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

struct echo {
	struct zc_chain pending; /* refused by a full send queue */
	bool eof;
};

static void echo_flush(struct zc_conn *c, struct echo *e)
{
	size_t len = zc_chain_len(&e->pending);
	int ret;

	if (len) {
		ret = zc_conn_send(c, &e->pending, NULL, NULL);
		if (ret == -EAGAIN)
			return; /* on_writable calls us again */
		if (ret) {
			zc_chain_release(&e->pending);
			zc_conn_close(c, ZC_CLOSE_ABORT);
			return;
		}
		zc_conn_recv_done(c, len);
	}
	if (e->eof)
		zc_conn_close(c, ZC_CLOSE_GRACEFUL);
}

static void echo_data(struct zc_conn *c, struct zc_chain *data, void *ud)
{
	struct echo *e = ud;

	/* Moving views between chains copies no payload. */
	int ret = zc_chain_cut(data, zc_chain_len(data), &e->pending);

	/* Empty after the cut, @data may still own a heap array of views
	 * (more than ZC_CHAIN_INLINE of them): released either way. */
	zc_chain_release(data);
	if (ret) {
		zc_conn_close(c, ZC_CLOSE_ABORT);
		return;
	}
	echo_flush(c, e);
}

static void echo_writable(struct zc_conn *c, void *ud)
{
	echo_flush(c, ud);
}

static void echo_eof(struct zc_conn *c, void *ud)
{
	struct echo *e = ud;

	e->eof = true;
	echo_flush(c, e);
}

static void echo_close(struct zc_conn *c, int err, void *ud)
{
	struct echo *e = ud;

	zc_chain_release(&e->pending);
	free(e);
}

static const struct zc_conn_ops echo_ops = {
	.on_data = echo_data,
	.on_writable = echo_writable,
	.on_eof = echo_eof,
	.on_close = echo_close,
};

void zc_echo_attach(struct zc_conn *c)
{
	struct echo *e = calloc(1, sizeof(*e));

	if (!e) {
		zc_conn_set_ops(c, NULL, NULL);
		zc_conn_close(c, ZC_CLOSE_ABORT);
		return;
	}
	zc_chain_init(&e->pending);
	zc_conn_set_ops(c, &echo_ops, e);
	if (!atomic_load(&c->rx_budget))
		zc_conn_set_rx_budget(c, c->r->cfg.sndq_max);
}

static void echo_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
	zc_echo_attach(c);
}

int zc_echo_listen(struct zc_reactor *r, const struct sockaddr *addr,
		   socklen_t addrlen, unsigned flags, struct zc_listener **out)
{
	return zc_listen(r, addr, addrlen, flags, echo_accept, NULL, out);
}
