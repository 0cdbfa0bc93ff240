/* SPDX-License-Identifier: MIT */
/*
 * test_rr.c - TCP_RR: request/response of raw bytes, one transaction in
 * flight per connection, as netperf's TCP_RR.
 *
 * The client sends REQ bytes and waits for RESP bytes; the server answers
 * every whole REQ bytes it has received with RESP bytes, however TCP cut
 * or merged them.  At the deadline the client lets its current
 * transaction finish and closes gracefully, so every request sent is
 * answered: bytes == transactions * (REQ + RESP) on both sides.
 *
 * With --rate (openloop.h) the client sends on its reactors' schedule
 * instead, up to -d requests outstanding per connection: the server
 * answers in order, so the answers match the oldest request.  At the
 * deadline a connection closes once its last answer is in.
 */
#include <errno.h>
#include <stdlib.h>

#include "cpu.h"
#include "engine.h"

static void fail(struct zp_conn *pc)
{
	pc->stopping = true;
	zc_conn_close(pc->c, ZC_CLOSE_ABORT);
}

static void send_request(struct zp_conn *pc)
{
	pc->t_start = zp_now_ns();
	if (zp_send_tmpl(pc, NULL, NULL))
		fail(pc);
}

/* Open loop: an answer ends the oldest request outstanding on @pc. */
static void ol_answer(struct zp_conn *pc)
{
	struct zp_rctx *rx = pc->rx;
	unsigned depth = rx->eng->cfg.depth;
	uint64_t *e = &pc->ol_fifo[2 * pc->ol_head];
	uint64_t now = zp_now_ns();

	zp_hist_record(rx->hist, now - e[0]);
	zp_ol_done(&rx->ol, e[0], e[1], now);
	rx->transactions++;
	pc->ol_head = (pc->ol_head + 1) % depth;
	pc->ol_n--;
}

static void ol_client_data(struct zp_conn *pc, size_t len)
{
	struct zp_rctx *rx = pc->rx;
	uint32_t resp = rx->eng->cfg.resp_size;

	pc->got += len;
	while (pc->got >= resp && pc->ol_n) {
		pc->got -= resp;
		ol_answer(pc);
	}
	if (pc->stopping) {
		if (!pc->ol_n)
			zc_conn_close(pc->c, ZC_CLOSE_GRACEFUL);
		return;
	}
	zp_ol_pump(&rx->ol);
}

/* zp_ol_issue_fn: send on the next connection with room. */
static int ol_issue(struct zp_olq *q, uint64_t intended, void *arg)
{
	struct zp_rctx *rx = arg;
	unsigned depth = rx->eng->cfg.depth, tries = 0;
	struct zp_conn *pc = rx->ol_cursor;
	uint64_t *o;

	for (;; pc = pc->next) {
		if (!pc)
			pc = rx->conns;
		if (!pc || tries++ > rx->eng->cfg.conns)
			return 0;
		if (!pc->stopping && pc->ol_n < depth)
			break;
	}
	rx->ol_cursor = pc->next;
	if (zp_send_tmpl(pc, NULL, NULL)) {
		fail(pc);
		return -EIO;
	}
	o = &pc->ol_fifo[2 * ((pc->ol_head + pc->ol_n) % depth)];
	o[0] = intended;
	o[1] = zp_now_ns();
	pc->ol_n++;
	return 1;
}

static void client_data(struct zp_conn *pc, size_t len)
{
	struct zp_rctx *rx = pc->rx;
	uint32_t resp = rx->eng->cfg.resp_size;

	if (pc->ol_fifo) {
		ol_client_data(pc, len);
		return;
	}
	pc->got += len;
	if (pc->got < resp)
		return;
	/* One request in flight: the server never sends more than RESP. */
	pc->got -= resp;
	zp_hist_record(rx->hist, zp_now_ns() - pc->t_start);
	rx->transactions++;
	if (pc->stopping)
		zc_conn_close(pc->c, ZC_CLOSE_GRACEFUL);
	else
		send_request(pc);
}

static void server_data(struct zp_conn *pc, size_t len)
{
	struct zp_rctx *rx = pc->rx;
	uint32_t req = rx->eng->cfg.req_size;

	pc->got += len;
	while (pc->got >= req) {
		pc->got -= req;
		zp_maybe_stall(rx->eng);
		if (zp_send_tmpl(pc, NULL, NULL)) {
			fail(pc);
			return;
		}
		rx->transactions++;
	}
}

static void on_data(struct zc_conn *c, struct zc_chain *data, void *ud)
{
	struct zp_conn *pc = ud;
	size_t len = zc_chain_len(data);

	zp_consume(pc, data);
	if (pc->rx->eng->server)
		server_data(pc, len);
	else
		client_data(pc, len);
}

static int prepare(struct zp_rctx *rx)
{
	const struct zp_test_cfg *cfg = &rx->eng->cfg;

	return zp_tmpl_make(rx, rx->eng->server ? cfg->resp_size
					     : cfg->req_size);
}

static void start(struct zp_conn *pc)
{
	struct zp_rctx *rx = pc->rx;

	if (rx->eng->server)
		return;
	if (!zp_open_loop(rx->eng)) {
		send_request(pc);
		return;
	}
	/* The schedule drives the requests; the queue is made once per
	 * reactor, the outstanding ring once per connection. */
	pc->ol_fifo = calloc(2 * rx->eng->cfg.depth, sizeof(*pc->ol_fifo));
	if (!pc->ol_fifo || (!zp_olq_live(&rx->ol) &&
			     zp_olq_init(&rx->ol, rx->r, ol_issue, rx)))
		fail(pc);
}

static void stop(struct zp_conn *pc)
{
	/* The server follows the client's close. */
	if (pc->rx->eng->server)
		return;
	pc->stopping = true;
	if (pc->ol_fifo && !pc->ol_n)
		zc_conn_close(pc->c, ZC_CLOSE_GRACEFUL);
}

static const struct zc_conn_ops rr_ops = {
	.on_connect = zp_on_connect,
	.on_data = on_data,
	.on_eof = zp_on_eof,
	.on_close = zp_on_close,
};

const struct zp_family zp_rr_family = {
	.ops = &rr_ops,
	.prepare = prepare,
	.start = start,
	.stop = stop,
};
