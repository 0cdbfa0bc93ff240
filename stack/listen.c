/* SPDX-License-Identifier: MIT */
/*
 * stack/listen.c - listeners with multishot accept (or one single-shot
 * accept at a time, ZC_LISTEN_ONESHOT_ACCEPT), on a socket of their own
 * (zc_listen) or on a dup of the caller's (zc_listen_fd).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#define ZC__BACKLOG 4096
/* Pause before accepting again after running out of fds or memory, so a
 * full backlog does not spin the reactor. */
#define ZC__ACCEPT_RETRY_NS 10000000

static void arm_accept(struct zc_listener *l)
{
	struct io_uring_sqe *sqe = zc__sqe(l->r);

	/* Both end in zc__handle_accept(): a single-shot accept's one
	 * completion comes without IORING_CQE_F_MORE, as a multishot
	 * accept's last does, and either way the accept is armed again. */
	if (l->oneshot)
		io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	else
		io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL,
					       SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, zc__ud(l, ZC__OP_ACCEPT));
	l->ops_inflight++;
	ZC__STAT_INC(l->r, accept_arms);
}

/* A listener on @fd (bound and listening, now ours). */
static int listener_start(struct zc_reactor *r, int fd, unsigned flags,
			  zc_accept_fn on_accept, void *ud,
			  struct zc_listener **out)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct zc_listener *l;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return -errno;
	l = zc__zalloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->r = r;
	l->fd = fd;
	l->on_accept = on_accept;
	l->ud = ud;
	l->oneshot = flags & ZC_LISTEN_ONESHOT_ACCEPT;
	if (ss.ss_family == AF_INET6)
		l->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else if (ss.ss_family == AF_INET)
		l->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	zc__dlist_add(&r->listeners, &l->link);
	arm_accept(l);
	*out = l;
	return 0;
}

/* The file a bind to @addr creates, or NULL (not Unix, abstract). */
static const char *unix_path(const struct sockaddr *addr, socklen_t addrlen)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)addr;

	if (addr->sa_family != AF_UNIX ||
	    addrlen <= offsetof(struct sockaddr_un, sun_path) ||
	    !un->sun_path[0])
		return NULL;
	return un->sun_path;
}

int zc_listen(struct zc_reactor *r, const struct sockaddr *addr,
	      socklen_t addrlen, unsigned flags, zc_accept_fn on_accept,
	      void *ud, struct zc_listener **out)
{
	const char *path;
	char *unlink_path = NULL;
	int fd, one = 1, ret;

	if (!r || !addr || !on_accept || !out ||
	    addrlen < sizeof(sa_family_t) ||
	    addrlen > sizeof(struct sockaddr_storage) ||
	    (flags & ~(ZC_LISTEN_REUSEPORT | ZC_LISTEN_ONESHOT_ACCEPT)))
		return -EINVAL;
	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6 &&
	    addr->sa_family != AF_UNIX)
		return -EAFNOSUPPORT;
	if (addr->sa_family == AF_UNIX && (flags & ZC_LISTEN_REUSEPORT))
		return -EINVAL;
	if (r->torn_down)
		return -ESHUTDOWN;
	path = unix_path(addr, addrlen);
	if (path && !(unlink_path = strndup(path, addrlen -
				       offsetof(struct sockaddr_un, sun_path))))
		return -ENOMEM;
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto err_free;
	}
	ret = zc__sock_bufs(r, fd);
	if (ret)
		goto err_close;
	/* SO_REUSEADDR: restart on a port whose old connections linger in
	 * TIME_WAIT; it does not let a second listener bind it (only
	 * SO_REUSEPORT, on request, does). */
	if ((addr->sa_family != AF_UNIX &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))) ||
	    ((flags & ZC_LISTEN_REUSEPORT) &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    bind(fd, addr, addrlen)) {
		ret = -errno;
		goto err_close;
	}
	if (listen(fd, ZC__BACKLOG)) {
		ret = -errno;
		goto err_unlink;
	}
	ret = listener_start(r, fd, flags, on_accept, ud, out);
	if (ret)
		goto err_unlink;
	(*out)->unlink_path = unlink_path;
	return 0;

err_unlink:
	if (unlink_path)
		unlink(unlink_path);
err_close:
	close(fd);
err_free:
	free(unlink_path);
	return ret;
}

int zc_listen_fd(struct zc_reactor *r, int fd, unsigned flags,
		 zc_accept_fn on_accept, void *ud, struct zc_listener **out)
{
	int type = 0, acc = 0, ret;
	socklen_t tl = sizeof(type), al = sizeof(acc);

	if (!r || fd < 0 || !on_accept || !out ||
	    (flags & ~ZC_LISTEN_ONESHOT_ACCEPT))
		return -EINVAL;
	if (r->torn_down)
		return -ESHUTDOWN;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) ||
	    type != SOCK_STREAM || !acc)
		return -EINVAL;
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = listener_start(r, fd, flags, on_accept, ud, out);
	if (ret)
		close(fd);
	return ret;
}

uint16_t zc_listener_port(const struct zc_listener *l)
{
	return l->port;
}

int zc_listener_fd(const struct zc_listener *l)
{
	return l->fd;
}

static void listener_maybe_free(struct zc_listener *l)
{
	if (!l->closing || l->ops_inflight)
		return;
	if (l->unlink_path)
		unlink(l->unlink_path);
	free(l->unlink_path);
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
	int ret = zc__sock_setup(r, fd);
	struct zc_conn *c;

	if (ret < 0 || !(c = zc__conn_new(r, fd))) {
		close(fd);
		return;
	}
	if (ret == 1)
		zc__conn_plain_only(c);
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
		zc__logp(ZC_LOG_WARN, NULL, "accept failed",
			 "accept on port %u: %s, retrying in 10 ms", l->port,
			 strerror(-cqe->res));
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
