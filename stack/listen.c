/* SPDX-License-Identifier: MIT */
/*
 * stack/listen.c - listeners with multishot accept.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define ZC__BACKLOG 4096
/* Pause before accepting again after running out of fds or memory, so a
 * full backlog does not spin the reactor. */
#define ZC__ACCEPT_RETRY_NS 10000000

static void arm_accept(struct zc_listener *l)
{
	struct io_uring_sqe *sqe = zc__sqe(l->r);

	io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, zc__ud(l, ZC__OP_ACCEPT));
	l->ops_inflight++;
}

int zc_listen(struct zc_reactor *r, const struct sockaddr *addr,
	      socklen_t addrlen, unsigned flags, zc_accept_fn on_accept,
	      void *ud, struct zc_listener **out)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct zc_listener *l;
	int fd, one = 1, ret;

	if (!r || !addr || !on_accept || !out ||
	    (addr->sa_family != AF_INET && addr->sa_family != AF_INET6) ||
	    (flags & ~ZC_LISTEN_REUSEPORT))
		return -EINVAL;
	if (r->torn_down)
		return -ESHUTDOWN;
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = zc__sock_bufs(r, fd);
	if (ret)
		goto err_close;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    ((flags & ZC_LISTEN_REUSEPORT) &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    bind(fd, addr, addrlen) || listen(fd, ZC__BACKLOG) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		ret = -errno;
		goto err_close;
	}
	l = zc__zalloc(sizeof(*l));
	if (!l) {
		ret = -ENOMEM;
		goto err_close;
	}
	l->r = r;
	l->fd = fd;
	l->on_accept = on_accept;
	l->ud = ud;
	l->port = ntohs(ss.ss_family == AF_INET6 ?
				((struct sockaddr_in6 *)&ss)->sin6_port :
				((struct sockaddr_in *)&ss)->sin_port);
	zc__dlist_add(&r->listeners, &l->link);
	arm_accept(l);
	*out = l;
	return 0;

err_close:
	close(fd);
	return ret;
}

uint16_t zc_listener_port(const struct zc_listener *l)
{
	return l->port;
}

static void listener_maybe_free(struct zc_listener *l)
{
	if (!l->closing || l->ops_inflight)
		return;
	close(l->fd);
	zc__dlist_del(&l->link);
	if (l->tls)
		zc_tls_ctx_put(l->tls);
	free(l);
}

void zc_listener_close(struct zc_listener *l)
{
	struct io_uring_sqe *sqe;

	if (!l || l->closing)
		return;
	l->closing = true;
	if (l->ops_inflight) {
		/* Cancels both the accept and a pending retry timer. */
		sqe = zc__sqe(l->r);
		io_uring_prep_cancel_fd(sqe, l->fd, IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, zc__ud(NULL, ZC__OP_IGNORE));
		sqe = zc__sqe(l->r);
		io_uring_prep_timeout_remove(sqe, zc__ud(l, ZC__OP_ACCEPT_DELAY),
					     0);
		io_uring_sqe_set_data64(sqe, zc__ud(NULL, ZC__OP_IGNORE));
	}
	listener_maybe_free(l);
}

void zc__close_listeners(struct zc_reactor *r)
{
	struct zc__dlist *it, *next;

	for (it = r->listeners.next; it != &r->listeners; it = next) {
		next = it->next;
		zc_listener_close(zc__container_of(it, struct zc_listener, link));
	}
}

static void accepted(struct zc_listener *l, int fd)
{
	struct zc_reactor *r = l->r;
	struct zc_conn *c;

	if (zc__sock_setup(r, fd) || !(c = zc__conn_new(r, fd))) {
		close(fd);
		return;
	}
	c->state = ZC__OPEN;
	ZC__STAT_INC(r, accepted);
	if (l->tls && zc__tls_accept(c, l->tls)) {
		/* Over the handshake cap (counted, logged): never shown to
		 * the user, closed at once. */
		zc_conn_close(c, ZC_CLOSE_ABORT);
		zc__conn_dirty(c);
		return;
	}
	l->on_accept(l, c, l->ud);
	if (!c->ops)
		zc_conn_close(c, ZC_CLOSE_ABORT);
	zc__conn_dirty(c);
}

void zc__handle_accept(struct zc_reactor *r, const struct io_uring_cqe *cqe)
{
	struct zc_listener *l = zc__ud_obj(cqe->user_data);
	struct io_uring_sqe *sqe;

	if (cqe->res >= 0) {
		if (l->closing)
			close(cqe->res);
		else
			accepted(l, cqe->res);
	}
	if (cqe->flags & IORING_CQE_F_MORE)
		return;
	l->ops_inflight--;
	if (l->closing) {
		listener_maybe_free(l);
		return;
	}
	if (cqe->res == -EMFILE || cqe->res == -ENFILE ||
	    cqe->res == -ENOMEM || cqe->res == -ENOBUFS) {
		fprintf(stderr, "zcrpc: accept on port %u: %s, retrying\n",
			l->port, strerror(-cqe->res));
		l->ts.tv_sec = 0;
		l->ts.tv_nsec = ZC__ACCEPT_RETRY_NS;
		sqe = zc__sqe(r);
		io_uring_prep_timeout(sqe, &l->ts, 0, 0);
		io_uring_sqe_set_data64(sqe, zc__ud(l, ZC__OP_ACCEPT_DELAY));
		l->ops_inflight++;
		return;
	}
	arm_accept(l);
}

void zc__handle_accept_delay(struct zc_reactor *r,
			     const struct io_uring_cqe *cqe)
{
	struct zc_listener *l = zc__ud_obj(cqe->user_data);

	l->ops_inflight--;
	if (l->closing)
		listener_maybe_free(l);
	else
		arm_accept(l);
}
