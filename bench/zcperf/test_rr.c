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
 */
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

static void client_data(struct zp_conn *pc, size_t len)
{
	struct zp_rctx *rx = pc->rx;
	uint32_t resp = rx->eng->cfg.resp_size;

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
	if (!pc->rx->eng->server)
		send_request(pc);
}

static void stop(struct zp_conn *pc)
{
	/* The server follows the client's close. */
	if (!pc->rx->eng->server)
		pc->stopping = true;
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
