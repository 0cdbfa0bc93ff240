/* SPDX-License-Identifier: MIT */
/*
 * stack/log.h - the library's internal log calls, behind zc_log_set()
 * (stack.h).  Not installed.  It lives in stack/, the lowest layer that
 * knows connections, so that stack/ and rpc/ (which includes it as
 * "../stack/log.h", a downward arrow) log through the one sink.
 *
 * Every message has a level, a stable short reason (a string literal the
 * user may match on: "protocol error", "accept failed", ...), the peer of
 * its connection when there is one, and free text.  Messages below the
 * sink's level cost one atomic load; none is on a hot path by default
 * (the default level is ZC_LOG_WARN).
 */
#ifndef ZCRPC_STACK_LOG_H
#define ZCRPC_STACK_LOG_H

#include <stdbool.h>

#include <zcrpc/stack.h>

/* Would a message of @level reach the sink?  (Test before costly
 * formatting.) */
bool zc__log_on(enum zc_log_level level);

/* Log @reason (a literal) about @conn (NULL: none) with printf text. */
void zc__logc(enum zc_log_level level, const struct zc_conn *conn,
	      const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The same with the peer given as a string (NULL or "": none). */
void zc__logp(enum zc_log_level level, const char *peer, const char *reason,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif /* ZCRPC_STACK_LOG_H */
