/* SPDX-License-Identifier: MIT */
/*
 * rpc/client_error.c - why a call ended as it did (zc_rpc_call_error()):
 * derived at completion from the call's state and the client's last
 * connect failure, published to the done callback through a thread-local
 * pointer, and kept for the caller of zc_rpc_call_sync().
 */
#include <errno.h>
#include <stdio.h>

#include "client.h"

/* The error of the completion running on this thread (a done callback),
 * or of this thread's last zc_rpc_call_sync(). */
static _Thread_local const struct zc_rpc_error *current;
static _Thread_local struct zc_rpc_error sync_kept;

static void with_connect_failure(const struct zc_rpc_client *cli,
				 struct zc_rpc_error *e)
{
	const struct zc_addr *a;

	if (!cli->last_fail.err)
		return;
	e->err = cli->last_fail.err;
	a = &cli->addrs[cli->last_fail.addr];
	if (zc_addr_format((const struct sockaddr *)&a->ss, a->len, e->peer,
			   sizeof(e->peer)) < 0)
		e->peer[0] = 0;
}

void zc__call_why(const struct zc_rpc_client *cli,
		  const struct zc_rpc_pending *p, int status,
		  struct zc_rpc_error *e)
{
	bool sent = p->state == P_SENT;

	/* Every completion passes here: the OK path writes four fields. */
	e->status = status;
	e->err = 0;
	e->peer[0] = 0;
	switch (status) {
	case ZC_RPC_OK:
		e->reason = "ok";
		return;
	case ZC_RPC_CANCELLED:
		e->reason = "cancelled";
		return;
	case ZC_RPC_DEADLINE_EXCEEDED:
		if (sent) {
			e->reason = "deadline exceeded";
			return;
		}
		e->reason = "deadline exceeded while connecting";
		with_connect_failure(cli, e);
		return;
	case ZC_RPC_PROTOCOL_ERROR:
		e->reason = "protocol error";
		return;
	}
	if (cli->closing_r) {
		e->reason = "client closing";
	} else if (!sent) {
		/* Never reached a connection. */
		if (status == ZC_RPC_UNAVAILABLE) {
			e->reason = "no connection";
			with_connect_failure(cli, e);
		} else if (status == ZC_RPC_TOO_LARGE) {
			e->reason = "too large for the server";
		} else {
			e->reason = "client out of memory";
			e->err = -ENOMEM;
		}
	} else if (p->cc && p->cc->lost_err) {
		e->reason = "connection lost";
		e->err = p->cc->lost_err;
	} else if (p->cc && p->cc->goaway) {
		e->reason = "server going away";
	} else {
		e->reason = "answered by the server";
	}
}

const struct zc_rpc_error *zc__call_error_enter(const struct zc_rpc_error *e)
{
	const struct zc_rpc_error *prev = current;

	current = e;
	return prev;
}

void zc__call_error_leave(const struct zc_rpc_error *prev)
{
	current = prev;
}

void zc__call_error_keep(const struct zc_rpc_error *e)
{
	sync_kept = *e;
	current = &sync_kept;
}

const struct zc_rpc_error *zc_rpc_call_error(void)
{
	return current;
}
