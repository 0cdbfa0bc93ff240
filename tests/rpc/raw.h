/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/raw.h - a raw socket that speaks the protocol by hand, as a
 * client in another language would from docs/PROTOCOL.md: frames written
 * with the codec, read back one at a time, and the ways a connection can
 * end (reset, EOF).  Criterion asserts; loopback only; every read is
 * bounded by SO_RCVTIMEO.
 */
#ifndef ZC_TESTS_RPC_RAW_H
#define ZC_TESTS_RPC_RAW_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "frame.h"
#include "rpc_test.h"

static inline int raw_connect(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	/* Only bounds a failing test: a live connection then reads EAGAIN. */
	struct timeval tv = { .tv_sec = 10 };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static inline void raw_send(int fd, const void *p, size_t len)
{
	cr_assert_eq(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

static inline void raw_frame(int fd, const struct zc_frame *f,
			     const void *payload)
{
	uint8_t hdr[ZC_FRAME_HDR_LEN];

	zc__frame_encode(hdr, f);
	raw_send(fd, hdr, sizeof(hdr));
	if (f->len)
		raw_send(fd, payload, f->len);
}

static inline void raw_hello(int fd)
{
	uint8_t p[ZC_FRAME_HELLO_LEN];

	zc__hello_encode(p, &(struct zc_hello){
		.max_message = ZC_RPC_MAX_MESSAGE_DEFAULT,
		.max_frame = 65536 });
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_HELLO, .len = 16,
					  .msg_len = 16 }, p);
}

/* Read one frame; returns 0, or -1 at EOF / error / timeout. */
static inline int raw_read(int fd, struct zc_frame *f, uint8_t *payload,
			   size_t cap)
{
	static const struct zc_frame_limits lim = { .max_frame = 1 << 20 };
	uint8_t hdr[ZC_FRAME_HDR_LEN];
	size_t got = 0;

	while (got < sizeof(hdr)) {
		ssize_t n = recv(fd, hdr + got, sizeof(hdr) - got, 0);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	cr_assert_eq(zc__frame_decode_hdr(hdr, &lim, f), 0);
	cr_assert_leq(f->len, cap);
	for (got = 0; got < f->len;) {
		ssize_t n = recv(fd, payload + got, f->len - got, 0);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* Expect the server's HELLO first. */
static inline void raw_expect_hello(int fd)
{
	uint8_t p[64];
	struct zc_frame f;
	struct zc_hello h;

	cr_assert_eq(raw_read(fd, &f, p, sizeof(p)), 0);
	cr_assert_eq(f.type, ZC_FT_HELLO);
	cr_assert_eq(zc__hello_decode(p, f.len, &h), 0);
	cr_assert_eq(h.max_frame, ZC_RPC_MAX_FRAME_DEFAULT);
}

/*
 * The server must reset the connection itself, with nothing sent first:
 * we never close nor shut down our side, so a graceful close would leave
 * the recv below waiting (and failing with EAGAIN at SO_RCVTIMEO) or
 * returning EOF, while an abort makes it fail with ECONNRESET.
 */
static inline void raw_expect_reset(int fd, const char *what)
{
	uint8_t b;
	ssize_t n;

	errno = 0;
	n = recv(fd, &b, 1, 0);
	cr_assert_eq(n, -1, "%s: got %zd instead of a reset", what, n);
	cr_assert_eq(errno, ECONNRESET, "%s: %s instead of a reset", what,
		     strerror(errno));
	close(fd);
}

/* Connect and exchange HELLOs. */
static inline int raw_open(uint16_t port)
{
	int fd = raw_connect(port);

	raw_hello(fd);
	raw_expect_hello(fd);
	return fd;
}

/* The server closed gracefully: EOF, not a reset (nor a timeout). */
static inline void raw_expect_eof(int fd, const char *what)
{
	uint8_t b;
	ssize_t n;

	errno = 0;
	n = recv(fd, &b, 1, 0);
	cr_assert_eq(n, 0, "%s: got %zd (%s) instead of EOF", what, n,
		     strerror(errno));
}

/* A request of @len pattern bytes (byte i is 'a' + i % 23) cut into
 * frames of @frag bytes. */
static inline void raw_request(int fd, uint64_t id, uint32_t method,
			       uint32_t deadline_us, size_t len, size_t frag)
{
	static uint8_t buf[1 << 16];
	size_t off = 0;

	cr_assert_leq(frag, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)('a' + i % 23);
	do {
		size_t n = len - off < frag ? len - off : frag;

		raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST,
			.flags = off + n < len ? ZC_FF_MORE : 0,
			.method = method, .len = (uint32_t)n, .id = id,
			.deadline_us = deadline_us,
			.msg_len = (uint32_t)len }, buf);
		off += n;
	} while (off < len);
}

#endif
