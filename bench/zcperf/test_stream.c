/* SPDX-License-Identifier: MIT */
/*
 * test_stream.c - TCP_STREAM (client sends) and TCP_MAERTS (server sends).
 *
 * The sender keeps its send queue full: it queues clones of the -m
 * template until zc_conn_send() answers -EAGAIN (the queue holds sndq_max
 * bytes) or MAX_QUEUED messages wait, and resumes from on_writable or as
 * sends complete.  The message cap bounds memory for tiny -m, where the
 * stack's per-chain bookkeeping, not the payload bytes, would dominate.  At the deadline it stops and
 * closes gracefully: the stack flushes the queue, shuts the socket down,
 * and the receiver, counting up to EOF, closes in turn.  So the run ends
 * when the last byte was received, and both sides' byte counts must agree.
 */
#include <errno.h>

#include "engine.h"

#define MAX_QUEUED 1024u
#define RESUME_AT (MAX_QUEUED / 2)

static bool is_sender(const struct zp_engine *e)
{
	return (e->cfg.test == ZP_TCP_STREAM) != e->server;
}

static void pump(struct zp_conn *pc);

/* Runs before on_close, so @arg is still alive (stack.h, Close). */
static void sent(void *arg, int err)
{
	struct zp_conn *pc = arg;

	pc->queued--;
	if (!err && pc->queued == RESUME_AT)
		pump(pc);
}

static void pump(struct zp_conn *pc)
{
	while (!pc->stopping && pc->queued < MAX_QUEUED) {
		int ret = zp_send_tmpl(pc, sent, pc);

		if (ret == -EAGAIN)
			return;
		if (ret) {
			/* -EPIPE: the connection is going; on_close counts
			 * why.  Anything else is ours to report. */
			pc->stopping = true;
			if (ret != -EPIPE)
				zc_conn_close(pc->c, ZC_CLOSE_ABORT);
			return;
		}
		pc->queued++;
	}
}

static void on_writable(struct zc_conn *c, void *ud)
{
	pump(ud);
}

static void on_data(struct zc_conn *c, struct zc_chain *data, void *ud)
{
	zp_consume(ud, data);
}

static int prepare(struct zp_rctx *rx)
{
	if (!is_sender(rx->eng))
		return 0;
	return zp_tmpl_make(rx, rx->eng->cfg.msg_size);
}

static void start(struct zp_conn *pc)
{
	if (is_sender(pc->rx->eng))
		pump(pc);
}

static void stop(struct zp_conn *pc)
{
	if (!is_sender(pc->rx->eng))
		return;
	pc->stopping = true;
	zp_note_tcp_info(pc);
	zc_conn_close(pc->c, ZC_CLOSE_GRACEFUL);
}

static const struct zc_conn_ops stream_ops = {
	.on_connect = zp_on_connect,
	.on_data = on_data,
	.on_writable = on_writable,
	.on_eof = zp_on_eof,
	.on_close = zp_on_close,
};

const struct zp_family zp_stream_family = {
	.ops = &stream_ops,
	.prepare = prepare,
	.start = start,
	.stop = stop,
};
