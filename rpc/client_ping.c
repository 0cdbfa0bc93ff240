/* SPDX-License-Identifier: MIT */
/*
 * rpc/client_ping.c - zc_rpc_ping(): a PING frame on one of the client's
 * ready connections, answered by the peer's PONG with the same 8 bytes
 * (PROTOCOL.md section 8), or ended by its timeout.
 *
 * A ping proves more than an open socket: the peer read our frame and its
 * reactor answered.  A server that stopped reading (its receive budget
 * held, or a peer that does the HELLO and nothing else) times out.
 *
 * Threads: zc_rpc_ping() on any thread hands the ping to the reactor
 * through the client's inbox; everything else runs on the reactor thread,
 * where the client keeps its pings on one list (a handful at a time: the
 * walks are linear).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

/* The peer's PONG carries our 8 bytes back: the ping's sequence number,
 * little endian. */
static void seq_encode(uint8_t *b, uint64_t seq)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(seq >> (8 * i));
}

static uint64_t seq_decode(const uint8_t *b)
{
	uint64_t seq = 0;

	for (int i = 0; i < 8; i++)
		seq |= (uint64_t)b[i] << (8 * i);
	return seq;
}

/* Unlink @p, run its callback, free it. */
static void finish(struct zc__ping *p, int result)
{
	struct zc_rpc_client *cli = p->cli;
	struct zc__ping **pp;

	for (pp = &cli->pings; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	p->done(p->arg, result, result ? 0 : zc__now_ns() - p->start_ns);
	free(p);
	zc__ctr_sub(&cli->pings_live, 1);
}

static void ping_send(struct zc__cconn *cc, struct zc__ping *p)
{
	struct zc_frame h = { .type = ZC_FT_PING };
	uint8_t buf[ZC_FRAME_PING_LEN];

	seq_encode(buf, p->seq);
	if (zc__tx_control(&cc->tx, &h, buf, sizeof(buf))) {
		finish(p, -ENOMEM);
		return;
	}
	p->cc = cc;
	zc__cconn_dirty(cc);
}

/* A ready connection that takes new frames, the least busy one. */
static struct zc__cconn *ready_conn(struct zc_rpc_client *cli)
{
	struct zc__cconn *best = NULL;

	for (struct zc__cconn *cc = cli->all; cc; cc = cc->next)
		if (cc->conn && cc->ready && !cc->goaway && !cc->broken &&
		    (!best || cc->ninflight < best->ninflight))
			best = cc;
	return best;
}

void zc__ping_start(struct zc_rpc_client *cli, struct zc__ping *p)
{
	struct zc__cconn *cc;

	p->next = cli->pings;
	cli->pings = p;
	if (cli->closing_r) {
		finish(p, -ESHUTDOWN);
		return;
	}
	p->seq = ++cli->ping_seq;
	cc = ready_conn(cli);
	if (cc)
		ping_send(cc, p);
	/* else it waits for a connection: zc__ping_ready() or its timeout */
}

void zc__ping_ready(struct zc__cconn *cc)
{
	struct zc__ping *p, *next;

	for (p = cc->cli->pings; p; p = next) {
		next = p->next;
		if (!p->cc)
			ping_send(cc, p);
	}
}

void zc__ping_pong(struct zc__cconn *cc, const uint8_t *payload)
{
	uint64_t seq = seq_decode(payload);

	for (struct zc__ping *p = cc->cli->pings; p; p = p->next)
		if (p->cc == cc && p->seq == seq) {
			finish(p, 0);
			return;
		}
	/* Not ours, or late: a PONG answers a PING, nothing more. */
}

void zc__ping_lost(struct zc__cconn *cc)
{
	struct zc__ping *p, *next;

	for (p = cc->cli->pings; p; p = next) {
		next = p->next;
		if (p->cc == cc)
			finish(p, -ECONNRESET);
	}
}

bool zc__ping_tick(struct zc_rpc_client *cli, uint64_t now)
{
	struct zc__ping *p, *next;

	for (p = cli->pings; p; p = next) {
		next = p->next;
		if (now >= p->deadline)
			finish(p, p->cc ? -ETIMEDOUT : -ENOTCONN);
	}
	return cli->pings;
}

void zc__ping_shutdown(struct zc_rpc_client *cli)
{
	while (cli->pings)
		finish(cli->pings, -ESHUTDOWN);
}

int zc_rpc_ping(struct zc_rpc_client *cli, unsigned timeout_ms,
		zc_rpc_ping_fn done, void *arg)
{
	struct zc__ping *p;

	if (!cli || !timeout_ms || !done)
		return -EINVAL;
	/* Counted before the closing check, as calls are: a destroy that
	 * starts now waits for this ping to finish. */
	zc__ctr_add(&cli->pings_live, 1);
	if (atomic_load(&cli->closing)) {
		zc__ctr_sub(&cli->pings_live, 1);
		return -ESHUTDOWN;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		zc__ctr_sub(&cli->pings_live, 1);
		return -ENOMEM;
	}
	p->msg.kind = MSG_PING;
	p->cli = cli;
	p->done = done;
	p->arg = arg;
	p->start_ns = zc__now_ns();
	p->deadline = p->start_ns + (uint64_t)timeout_ms * 1000000;
	zc__inbox_push(&cli->inbox, &p->msg.node);
	return 0;
}
