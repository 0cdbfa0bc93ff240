/* SPDX-License-Identifier: MIT */
/*
 * stack/log.c - the log sink (zc_log_set()), its default (one line on
 * stderr, as zcrpc always wrote), and the internal calls of stack/log.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>

#include "log.h"

static void log_stderr(void *arg, const struct zc_log_record *rec)
{
	(void)arg;
	/* One write per line so that concurrent reactors do not
	 * interleave. */
	if (rec->peer[0])
		fprintf(stderr, "zcrpc: %s: %s: %s: %s\n",
			zc_log_level_name(rec->level), rec->peer, rec->reason,
			rec->msg);
	else
		fprintf(stderr, "zcrpc: %s: %s: %s\n",
			zc_log_level_name(rec->level), rec->reason, rec->msg);
}

static const struct zc_log_sink default_sink = {
	.fn = log_stderr,
	.level = ZC_LOG_WARN,
};

/* The user's sink (borrowed, see zc_log_set()), or the default. */
static _Atomic(const struct zc_log_sink *) sink = &default_sink;

void zc_log_set(const struct zc_log_sink *s)
{
	atomic_store_explicit(&sink, s && s->fn ? s : &default_sink,
			      memory_order_release);
}

const char *zc_log_level_name(enum zc_log_level level)
{
	static const char *const names[] = { "error", "warn", "info",
					     "debug" };

	return (unsigned)level < 4 ? names[level] : "?";
}

bool zc__log_on(enum zc_log_level level)
{
	const struct zc_log_sink *s =
		atomic_load_explicit(&sink, memory_order_acquire);

	return level <= s->level;
}

static void emit(enum zc_log_level level, const char *peer,
		 const char *reason, const char *fmt, va_list ap)
{
	const struct zc_log_sink *s =
		atomic_load_explicit(&sink, memory_order_acquire);
	char msg[256];

	if (level > s->level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	s->fn(s->arg, &(struct zc_log_record){ .level = level,
		.reason = reason, .peer = peer ? peer : "", .msg = msg });
}

void zc__logp(enum zc_log_level level, const char *peer, const char *reason,
	      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(level, peer, reason, fmt, ap);
	va_end(ap);
}

void zc__logc(enum zc_log_level level, const struct zc_conn *conn,
	      const char *reason, const char *fmt, ...)
{
	char peer[ZC_PEER_MAX] = "";
	va_list ap;

	if (!zc__log_on(level))
		return;
	if (conn && zc_conn_peer(conn, peer, sizeof(peer)) < 0)
		peer[0] = 0;
	va_start(ap, fmt);
	emit(level, peer, reason, fmt, ap);
	va_end(ap);
}

int zc_conn_peer(const struct zc_conn *c, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (!c || !buf || !size)
		return -EINVAL;
	if (getpeername(zc_conn_fd(c), (struct sockaddr *)&ss, &sl))
		return -errno;
	return zc_addr_format((struct sockaddr *)&ss, sl, buf, size);
}
