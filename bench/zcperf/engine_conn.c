/* SPDX-License-Identifier: MIT */
/*
 * engine_conn.c - what the test families share on the reactor threads:
 * payload templates, sending them, counting and releasing received data,
 * and the connection callbacks common to every family.
 */
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "consumer.h"
#include "engine.h"

int zp_tmpl_make(struct zp_rctx *rx, uint32_t len)
{
	struct zc_pool *pool = zc_reactor_pool(rx->r);
	size_t bs = zc_pool_buf_size(pool);
	struct zc_chain *t = &rx->tmpl;
	uint32_t left = len;
	int ret;

	while (left) {
		size_t n = left < bs ? left : bs;
		struct zc_buf *buf;
		struct zc_view v;

		ret = zc_buf_alloc(pool, &buf);
		if (ret)
			goto err;
		/* Written once, while exclusive; read-only from here on. */
		memset(zc_buf_data(buf), 'z', n);
		ret = zc_view_adopt(&v, buf, 0, n);
		if (ret) {
			zc_buf_put(buf);
			goto err;
		}
		ret = zc_chain_append(t, &v);
		if (ret) {
			zc_view_release(&v);
			goto err;
		}
		left -= (uint32_t)n;
	}
	rx->tmpl_len = len;
	return 0;
err:
	zc_chain_release(t);
	return ret;
}

void zp_note_tcp_info(struct zp_conn *pc)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	struct zp_counters *t = &pc->rx->tcp;

	memset(&ti, 0, sizeof(ti));
	/* Best effort: a connection already gone adds nothing. */
	if (getsockopt(zc_conn_fd(pc->c), IPPROTO_TCP, TCP_INFO, &ti, &len))
		return;
	t->tcp_busy_us += ti.tcpi_busy_time;
	t->tcp_rwnd_limited_us += ti.tcpi_rwnd_limited;
	t->tcp_sndbuf_limited_us += ti.tcpi_sndbuf_limited;
	t->tcp_retrans += ti.tcpi_total_retrans;
}

int zp_send_tmpl(struct zp_conn *pc, void (*done)(void *arg, int err),
		 void *arg)
{
	struct zp_rctx *rx = pc->rx;
	struct zc_chain ch;
	int ret;

	zc_chain_init(&ch);
	ret = zc_chain_append_clone(&ch, &rx->tmpl);
	if (ret)
		return ret;
	ret = zc_conn_send(pc->c, &ch, done, arg);
	if (ret) {
		zc_chain_release(&ch);
		return ret;
	}
	rx->bytes_sent += rx->tmpl_len;
	return 0;
}

void zp_consume(struct zp_conn *pc, struct zc_chain *data)
{
	struct zp_engine *e = pc->rx->eng;
	size_t len = zc_chain_len(data);

	pc->rx->bytes_received += len;
	if (e->consumer) {
		if (!zp_consumer_push(e->consumer, &pc->rx->items, pc->c,
				      data))
			return;
		zc_chain_release(data);
		zc_conn_recv_done(pc->c, len);
		return;
	}
	zc_chain_release(data);
}

void zp_conn_link(struct zp_rctx *rx, struct zp_conn *pc)
{
	pc->rx = rx;
	pc->next = rx->conns;
	if (rx->conns)
		rx->conns->prev = pc;
	rx->conns = pc;
}

static void conn_unlink(struct zp_conn *pc)
{
	struct zp_rctx *rx = pc->rx;

	if (pc->prev)
		pc->prev->next = pc->next;
	else
		rx->conns = pc->next;
	if (pc->next)
		pc->next->prev = pc->prev;
}

void zp_on_connect(struct zc_conn *c, void *ud)
{
	struct zp_conn *pc = ud;

	pc->connected = true;
	zp_latch_add(&pc->rx->eng->connected, 1);
}

void zp_on_eof(struct zc_conn *c, void *ud)
{
	zc_conn_close(c, ZC_CLOSE_GRACEFUL);
}

void zp_on_close(struct zc_conn *c, int err, void *ud)
{
	struct zp_conn *pc = ud;
	struct zp_rctx *rx = pc->rx;
	struct zp_engine *e = rx->eng;

	if (err && err != -ECANCELED) {
		atomic_fetch_add(&e->conn_failures, 1);
		if (e->verbose)
			fprintf(stderr, "zcperf: %s connection closed: %s\n",
				e->server ? "server" : "client", strerror(-err));
	}
	if (!pc->connected)
		zp_latch_add(&e->connected, 1);
	/* TCP_RR --rate: what was outstanding here will not be answered. */
	for (; pc->ol_fifo && pc->ol_n; pc->ol_n--) {
		uint64_t *o = &pc->ol_fifo[2 * pc->ol_head];

		zp_ol_done(&rx->ol, o[0], o[1], 0);
		pc->ol_head = (pc->ol_head + 1) % e->cfg.depth;
	}
	if (rx->ol_cursor == pc)
		rx->ol_cursor = pc->next;
	conn_unlink(pc);
	free(pc->ol_fifo);
	free(pc);
	zp_latch_add(&e->closed, 1);
}

