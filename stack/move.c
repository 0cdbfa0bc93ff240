/* SPDX-License-Identifier: MIT */
/*
 * stack/move.c - zc_conn_move(): a connection leaves its reactor for
 * another.
 *
 * A connection's requests name it in their user_data, and their
 * completions arrive on the ring that took them: so it may leave only
 * when none is left on the old ring.  The move runs in three steps:
 *
 *   1. zc_conn_move() (old thread) marks it moving and dirty;
 *   2. its service on the old reactor (zc__move_service) cancels the
 *      receive and the error watch, starts no send, and waits for every
 *      completion and zero-copy notification, and for the resume flag
 *      (resume_queued): owning it keeps zc_conn_recv_done() on consumer
 *      threads from queueing work to either reactor while c->r changes.
 *      Then it unlinks the connection and queues move_work to the new
 *      reactor: from that moment the old thread never touches it again;
 *   3. move_arrive() (new thread) sets c->r, links it, gives the resume
 *      flag back and runs done(): the next service arms the receive on
 *      the new ring and sends what was queued.
 *
 * Nothing of the connection's buffers moves: views of the old pool stay
 * where they are and go home through its deferred list when released.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

int zc_conn_move(struct zc_conn *c, struct zc_reactor *to,
		 zc_conn_moved_fn done, void *arg)
{
	if (!c || !to || !done || to == c->r)
		return -EINVAL;
	if (c->tls)
		return -EOPNOTSUPP;
	if (c->moving)
		return -EALREADY;
	if (c->state == ZC__CONNECTING)
		return -EBUSY;
	if (c->state != ZC__OPEN)
		return -EPIPE;
	/* Set by teardown on its own thread: a hint only, the arrival
	 * checks again (see move_arrive). */
	if (__atomic_load_n(&to->closing, __ATOMIC_RELAXED))
		return -ESHUTDOWN;
	c->moving = true;
	c->move_to = to;
	c->move_done = done;
	c->move_arg = arg;
	zc__conn_dirty(c);
	return 0;
}

static void moved(struct zc_conn *c, int err)
{
	zc_conn_moved_fn done = c->move_done;
	void *arg = c->move_arg;

	c->moving = false;
	c->move_to = NULL;
	c->move_done = NULL;
	done(c, err, arg);
}

/*
 * @to is tearing down: its loop only waits for the connections it knows,
 * so this one is closed here, at once (nothing of it is in flight).
 */
static void arrive_closed(struct zc_conn *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	c->state = ZC__DONE;	/* nothing may dirty it on @to any more */
	c->err = -ESHUTDOWN;
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c->fd);
	c->fd_closed = true;
	moved(c, -ESHUTDOWN);
	zc__send_fail_queue(c);
	atomic_store(&c->resume_queued, true);	/* as finish(): door shut */
	if (c->ops && c->ops->on_close)
		c->ops->on_close(c, -ESHUTDOWN, c->ud);
	zc_conn_put(c);
}

static void move_arrive(struct zc_work *w)
{
	struct zc_conn *c = zc__container_of(w, struct zc_conn, move_work);
	struct zc_reactor *to = c->move_to;

	c->r = to;
	if (to->closing) {
		arrive_closed(c);
		return;
	}
	zc__dlist_add(&to->conns, &c->link);
	to->nconns++;
	ZC__STAT_INC(to, conns_open);
	ZC__STAT_INC(to, moved_in);
	zc__ffile_join(c);
	/* Pairs with zc_conn_recv_done(): a consumer that takes the flag
	 * after this store queues its resume to @to. */
	atomic_store(&c->resume_queued, false);
	zc__conn_dirty(c);
	moved(c, 0);
}

bool zc__move_service(struct zc_conn *c)
{
	struct zc_reactor *r = c->r;

	if (c->state != ZC__OPEN) {
		/* Closing: it stays and closes here. */
		moved(c, c->err ? c->err :
			 c->aborting ? -ECANCELED : -EPIPE);
		return false;
	}
	zc__cancel_recv(c);
	if (c->err_poll_armed && !c->err_poll_cancelling) {
		c->err_poll_cancelling = true;
		zc__cancel_ud(r, zc__ud(c, ZC__OP_POLL));
	}
	/* Each completion and notification dirties it: we come back. */
	if (c->ops_inflight || c->send_inflight || c->zc_pending)
		return true;
	/* A resume on its way runs on this reactor, clears the flag and
	 * dirties it: then we take the flag. */
	if (atomic_exchange(&c->resume_queued, true))
		return true;
	c->err_poll_cancelling = false;
	c->recv_starved = false;
	c->rx_heavy = false;
	/* A slot is the old ring's: @to gives it one of its own. */
	zc__ffile_leave(c);
	zc__dlist_del(&c->link);
	r->nconns--;
	ZC__STAT_ADD(r, conns_open, (uint64_t)-1);
	ZC__STAT_INC(r, moved_out);
	c->move_work.fn = move_arrive;
	zc_reactor_queue(c->move_to, &c->move_work);
	return true;
}
