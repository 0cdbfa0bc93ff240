/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/harness.h - two spawned reactors over loopback exchanging
 * pseudo-random byte streams that the receivers verify byte by byte.
 *
 * Every stream byte is a function of (stream seed, offset), so a receiver
 * checks what it got without any copy of what was sent, and a corrupted,
 * lost or reordered byte is counted where it lands.
 */
#ifndef ZC_TESTS_STACK_HARNESS_H
#define ZC_TESTS_STACK_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include <zcrpc/stack.h>
#include <zcrpc/tls.h>

#include "../common/sanitized.h"

/* Stream bytes. */
void hs_fill(uint64_t seed, uint64_t pos, void *dst, size_t len);
size_t hs_count_bad(uint64_t seed, uint64_t pos, const void *src, size_t len);

struct hs_cfg {
	struct zc_reactor_config rc;  /* both reactors */
	unsigned conns;
	size_t total;                 /* bytes each side sends per conn */
	size_t max_msg;               /* message sizes 1..max_msg */
	bool server_sends;            /* both ways, else client -> server */
	bool consumer_thread;         /* verify and release off-reactor */
	bool wrap;                    /* send wrapped malloc memory */
	bool scribble;                /* overwrite memory once released */
	unsigned consumer_delay_us;   /* per chain, on the consumer */
	bool hold_then_release;       /* consumer keeps chains, frees late */
	unsigned timeout_s;
	/* TLS contexts (borrowed), or NULL: plaintext. */
	struct zc_tls_ctx *tls_server, *tls_client;
};

struct hs_peer;

struct hs_result {
	uint64_t bytes_rx;            /* verified by consumers */
	uint64_t bytes_bad;           /* corrupted bytes seen */
	uint64_t sends, dones, done_errs;
	unsigned closed, close_errs;
	bool timed_out;
	const char *failed;           /* harness step that failed, or NULL */
	struct zc_reactor_stats st[2]; /* server, client */
};

/* Run one exchange end to end.  res->failed names a harness step that
 * failed (setup, or a reactor destroy that did not return 0). */
void hs_run(const struct hs_cfg *cfg, struct hs_result *res);

/* Loopback address with @port. */
void hs_addr(struct sockaddr_storage *ss, socklen_t *len, uint16_t port);

/* Raise RLIMIT_NOFILE's soft limit to the hard one; returns the limit. */
unsigned long hs_raise_nofile(void);

#endif
