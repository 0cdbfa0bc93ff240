/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_frame.c - rpc/frame.c: every frame type round-trips, every
 * prefix is "partial", every malformed shape is refused with its code, and
 * the bytes of docs/PROTOCOL.md section 10 are what the encoder produces.
 * Every decode reads input that ends flush against a PROT_NONE page.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#include <zcrpc/alloc.h>

#include "frame.h"
#include "guard.h"

static struct guard g;
static const struct zc_frame_limits lim = { .max_frame = 65536 };

static void setup(void)
{
	cr_assert_eq(guard_init(&g), 0);
}

static void teardown(void)
{
	guard_fini(&g);
}

TestSuite(frame, .init = setup, .fini = teardown);

/* Header bytes with any field values, valid or not (the encoder asserts). */
struct raw {
	uint16_t magic;
	uint8_t version, type;
	uint16_t flags, status;
	uint32_t method, len;
	uint64_t id;
	uint32_t deadline, msg_len;
};

static void raw_put(uint8_t *p, const struct raw *r)
{
	zc__put16(p, r->magic);
	p[2] = r->version;
	p[3] = r->type;
	zc__put16(p + 4, r->flags);
	zc__put16(p + 6, r->status);
	zc__put32(p + 8, r->method);
	zc__put32(p + 12, r->len);
	zc__put64(p + 16, r->id);
	zc__put32(p + 24, r->deadline);
	zc__put32(p + 28, r->msg_len);
}

/* Decode header + @plen payload bytes placed against the guard page. */
static int decode_raw(const struct raw *r, size_t plen, struct zc_frame *f)
{
	static uint8_t buf[ZC_FRAME_HDR_LEN + ZC_FRAG_MIN];

	raw_put(buf, r);
	memset(buf + ZC_FRAME_HDR_LEN, 0xab, plen);
	return zc__frame_decode(guard_place(&g, buf, ZC_FRAME_HDR_LEN + plen),
				ZC_FRAME_HDR_LEN + plen, &lim, f);
}

static const struct zc_frame samples[] = {
	{ .type = ZC_FT_HELLO, .len = 16, .msg_len = 16 },
	{ .type = ZC_FT_REQUEST, .method = 1, .len = 5, .id = 1,
	  .deadline_us = 1000000, .msg_len = 5 },
	{ .type = ZC_FT_REQUEST, .flags = ZC_FF_MORE, .method = 300,
	  .len = ZC_FRAG_MIN, .id = UINT64_MAX, .msg_len = 200000 },
	{ .type = ZC_FT_REQUEST, .method = 2, .len = 0, .id = 9 },
	{ .type = ZC_FT_RESPONSE, .method = 1, .len = 5, .id = 1, .msg_len = 5 },
	{ .type = ZC_FT_RESPONSE, .flags = ZC_FF_MORE, .len = ZC_FRAG_MIN, .id = 2,
	  .msg_len = 1 << 30 },
	{ .type = ZC_FT_ERROR, .status = 3, .method = 7, .id = 1 },
	{ .type = ZC_FT_ERROR, .status = 7, .len = 11, .id = 4, .msg_len = 11 },
	{ .type = ZC_FT_CANCEL, .id = 77, .method = 5 },
	{ .type = ZC_FT_PING, .len = 8, .msg_len = 8 },
	{ .type = ZC_FT_PONG, .len = 8, .msg_len = 8 },
	{ .type = ZC_FT_GOAWAY, .id = 12345 },
	{ .type = ZC_FT_GOAWAY, .status = 8, .len = 20, .msg_len = 20 },
};

Test(frame, roundtrip_every_type)
{
	uint8_t buf[ZC_FRAME_HDR_LEN + ZC_FRAG_MIN];
	bool seen[ZC_FT_LAST + 1] = { false };

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const struct zc_frame *s = &samples[i];
		size_t total = ZC_FRAME_HDR_LEN + s->len;
		struct zc_frame f;
		const void *p;

		zc__frame_encode(buf, s);
		memset(buf + ZC_FRAME_HDR_LEN, (int)i, s->len);
		p = guard_place(&g, buf, total);
		cr_assert_eq(zc__frame_decode(p, total, &lim, &f), (int)total,
			     "sample %zu (%s)", i, zc__frame_type_name(s->type));
		cr_assert_eq(f.version, ZC_FRAME_VERSION);
		cr_assert_eq(f.type, s->type);
		cr_assert_eq(f.flags, s->flags);
		cr_assert_eq(f.status, s->status);
		cr_assert_eq(f.method, s->method);
		cr_assert_eq(f.len, s->len);
		cr_assert_eq(f.id, s->id);
		cr_assert_eq(f.deadline_us, s->deadline_us);
		cr_assert_eq(f.msg_len, s->msg_len);
		seen[s->type] = true;
	}
	for (unsigned t = 1; t <= ZC_FT_LAST; t++)
		cr_assert(seen[t], "type %u not covered", t);
}

Test(frame, every_prefix_is_partial)
{
	uint8_t buf[ZC_FRAME_HDR_LEN + ZC_FRAG_MIN];

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const struct zc_frame *s = &samples[i];
		size_t total = ZC_FRAME_HDR_LEN + s->len;

		zc__frame_encode(buf, s);
		for (size_t n = 0; n < total; n++) {
			struct zc_frame f;

			cr_assert_eq(zc__frame_decode(guard_place(&g, buf, n),
						      n, &lim, &f), -EAGAIN,
				     "sample %zu prefix %zu", i, n);
		}
	}
}

Test(frame, partial_payload_still_reports_header)
{
	struct raw r = { ZC_FRAME_MAGIC, 1, ZC_FT_REQUEST, 0, 0, 9, 100, 3, 0,
			 100 };
	struct zc_frame f = { 0 };

	cr_assert_eq(decode_raw(&r, 40, &f), -EAGAIN);
	cr_assert_eq(f.len, 100);
	cr_assert_eq(f.id, 3);
}

Test(frame, trailing_bytes_are_not_consumed)
{
	uint8_t buf[2 * ZC_FRAME_HDR_LEN + 8];
	struct zc_frame f;

	zc__frame_encode(buf, &samples[9]); /* PING, 8 bytes */
	zc__frame_encode(buf + ZC_FRAME_HDR_LEN + 8, &samples[8]);
	cr_assert_eq(zc__frame_decode(guard_place(&g, buf, sizeof(buf)),
				      sizeof(buf), &lim, &f),
		     ZC_FRAME_HDR_LEN + 8);
	cr_assert_eq(f.type, ZC_FT_PING);
}

/* One malformed shape: start from a valid frame, break one thing. */
struct bad {
	const char *what;
	struct raw r;
	size_t plen;
	int want;
};

#define M ZC_FRAME_MAGIC
static const struct bad bads[] = {
	/* Several rules broken: the first in PROTOCOL.md section 3's order
	 * is the one reported. */
	{ "magic before version", { 0x1234, 9, 2, 0, 0, 1, 0, 1, 0, 0 }, 0,
	  -EPROTO },
	{ "version before type", { M, 9, 42, 0, 0, 1, 0, 1, 0, 0 }, 0,
	  -EPROTONOSUPPORT },
	{ "type before length", { M, 1, 42, 0, 0, 1, 65537, 1, 0, 65537 }, 0,
	  -EPROTO },
	{ "flags before length", { M, 1, 2, 0x2, 0, 1, 65537, 1, 0, 65537 }, 0,
	  -EPROTO },
	{ "length before msg_len", { M, 1, 2, 0, 0, 1, 65537, 1, 0, 1 }, 0,
	  -EMSGSIZE },
	{ "magic low byte", { 0x5200, 1, 2, 0, 0, 1, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "magic high byte", { 0x005a, 1, 2, 0, 0, 1, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "magic swapped", { 0x5a52, 1, 2, 0, 0, 1, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "version 0", { M, 0, 2, 0, 0, 1, 0, 1, 0, 0 }, 0, -EPROTONOSUPPORT },
	{ "version 2", { M, 2, 2, 0, 0, 1, 0, 1, 0, 0 }, 0, -EPROTONOSUPPORT },
	{ "type 0", { M, 1, 0, 0, 0, 1, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "type 9", { M, 1, 9, 0, 0, 1, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "type 255", { M, 1, 255, 0, 0, 1, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "unknown flag", { M, 1, 2, 0x2, 0, 1, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "high flag", { M, 1, 2, 0x8000, 0, 1, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "len over max_frame", { M, 1, 2, 0, 0, 1, 65537, 1, 0, 65537 }, 0,
	  -EMSGSIZE },
	{ "len 4G", { M, 1, 2, 0, 0, 1, UINT32_MAX, 1, 0, UINT32_MAX }, 0,
	  -EMSGSIZE },
	{ "msg_len < len", { M, 1, 2, 0, 0, 1, 10, 1, 0, 9 }, 10, -EPROTO },
	/* HELLO */
	{ "hello len 15", { M, 1, 1, 0, 0, 0, 15, 0, 0, 15 }, 15, -EPROTO },
	{ "hello len 17", { M, 1, 1, 0, 0, 0, 17, 0, 0, 17 }, 17, -EPROTO },
	{ "hello id", { M, 1, 1, 0, 0, 0, 16, 1, 0, 16 }, 16, -EPROTO },
	{ "hello method", { M, 1, 1, 0, 0, 1, 16, 0, 0, 16 }, 16, -EPROTO },
	{ "hello status", { M, 1, 1, 0, 1, 0, 16, 0, 0, 16 }, 16, -EPROTO },
	{ "hello deadline", { M, 1, 1, 0, 0, 0, 16, 0, 5, 16 }, 16, -EPROTO },
	{ "hello more", { M, 1, 1, 1, 0, 0, 16, 0, 0, 16 }, 16, -EPROTO },
	{ "hello msg_len", { M, 1, 1, 0, 0, 0, 16, 0, 0, 17 }, 16, -EPROTO },
	/* REQUEST */
	{ "request id 0", { M, 1, 2, 0, 0, 1, 0, 0, 0, 0 }, 0, -EPROTO },
	{ "request method 0", { M, 1, 2, 0, 0, 0, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "request status", { M, 1, 2, 0, 2, 1, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "request empty more", { M, 1, 2, 1, 0, 1, 0, 1, 0, 10 }, 0, -EPROTO },
	{ "request short more", { M, 1, 2, 1, 0, 1, ZC_FRAG_MIN - 1, 1, 0,
				  10000 }, 0, -EPROTO },
	/* RESPONSE */
	{ "response id 0", { M, 1, 3, 0, 0, 0, 0, 0, 0, 0 }, 0, -EPROTO },
	{ "response status", { M, 1, 3, 0, 1, 0, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "response deadline", { M, 1, 3, 0, 0, 0, 0, 1, 9, 0 }, 0, -EPROTO },
	{ "response empty more", { M, 1, 3, 1, 0, 0, 0, 1, 0, 5 }, 0,
	  -EPROTO },
	{ "response 1-byte more", { M, 1, 3, 1, 0, 0, 1, 1, 0, 5 }, 0,
	  -EPROTO },
	/* ERROR */
	{ "error status 0", { M, 1, 4, 0, 0, 0, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "error id 0", { M, 1, 4, 0, 3, 0, 0, 0, 0, 0 }, 0, -EPROTO },
	{ "error more", { M, 1, 4, 1, 3, 0, 4, 1, 0, 8 }, 4, -EPROTO },
	{ "error deadline", { M, 1, 4, 0, 3, 0, 0, 1, 1, 0 }, 0, -EPROTO },
	{ "error msg_len", { M, 1, 4, 0, 3, 0, 4, 1, 0, 5 }, 4, -EPROTO },
	/* CANCEL */
	{ "cancel id 0", { M, 1, 5, 0, 0, 0, 0, 0, 0, 0 }, 0, -EPROTO },
	{ "cancel payload", { M, 1, 5, 0, 0, 0, 1, 1, 0, 1 }, 1, -EPROTO },
	{ "cancel status", { M, 1, 5, 0, 1, 0, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "cancel more", { M, 1, 5, 1, 0, 0, 0, 1, 0, 0 }, 0, -EPROTO },
	{ "cancel deadline", { M, 1, 5, 0, 0, 0, 0, 1, 1, 0 }, 0, -EPROTO },
	{ "cancel msg_len", { M, 1, 5, 0, 0, 0, 0, 1, 0, 1 }, 0, -EPROTO },
	/* PING / PONG */
	{ "ping len 7", { M, 1, 6, 0, 0, 0, 7, 0, 0, 7 }, 7, -EPROTO },
	{ "ping len 0", { M, 1, 6, 0, 0, 0, 0, 0, 0, 0 }, 0, -EPROTO },
	{ "ping id", { M, 1, 6, 0, 0, 0, 8, 1, 0, 8 }, 8, -EPROTO },
	{ "ping method", { M, 1, 6, 0, 0, 1, 8, 0, 0, 8 }, 8, -EPROTO },
	{ "pong status", { M, 1, 7, 0, 1, 0, 8, 0, 0, 8 }, 8, -EPROTO },
	{ "pong more", { M, 1, 7, 1, 0, 0, 8, 0, 0, 8 }, 8, -EPROTO },
	{ "pong deadline", { M, 1, 7, 0, 0, 0, 8, 0, 1, 8 }, 8, -EPROTO },
	/* GOAWAY */
	{ "goaway method", { M, 1, 8, 0, 0, 1, 0, 5, 0, 0 }, 0, -EPROTO },
	{ "goaway more", { M, 1, 8, 1, 0, 0, 4, 5, 0, 8 }, 4, -EPROTO },
	{ "goaway deadline", { M, 1, 8, 0, 0, 0, 0, 5, 1, 0 }, 0, -EPROTO },
	{ "goaway msg_len", { M, 1, 8, 0, 0, 0, 2, 5, 0, 3 }, 2, -EPROTO },
};
#undef M

Test(frame, every_malformed_shape)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];
		struct zc_frame f;

		cr_assert_eq(decode_raw(&b->r, b->plen, &f), b->want,
			     "%s: got %d want %d", b->what,
			     decode_raw(&b->r, b->plen, &f), b->want);
		/* Malformed is detected from the header alone. */
		cr_assert_eq(decode_raw(&b->r, 0, &f), b->want, "%s (hdr)",
			     b->what);
	}
}

Test(frame, hello_payload)
{
	const struct zc_hello h = { 64u << 20, 65536, 1024, 0 };
	uint8_t buf[ZC_FRAME_HELLO_LEN];
	struct zc_hello out;
	const uint8_t *p;

	zc__hello_encode(buf, &h);
	p = guard_place(&g, buf, sizeof(buf));
	cr_assert_eq(zc__hello_decode(p, sizeof(buf), &out), 0);
	cr_assert_eq(out.max_message, h.max_message);
	cr_assert_eq(out.max_frame, h.max_frame);
	cr_assert_eq(out.max_inflight, h.max_inflight);
	cr_assert_eq(zc__hello_decode(p + 1, sizeof(buf) - 1, &out), -EPROTO);

	const struct zc_hello bad[] = {
		{ 1, ZC_FRAME_MIN - 1, 0, 0 },
		{ 1, ZC_FRAME_MAX + 1, 0, 0 },
		{ 0, 65536, 0, 0 },
		{ 1, 65536, 0, 1 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		zc__hello_encode(buf, &bad[i]);
		p = guard_place(&g, buf, sizeof(buf));
		cr_assert_eq(zc__hello_decode(p, sizeof(buf), &out), -EPROTO,
			     "bad hello %zu", i);
	}
}

/* The bytes shown in docs/PROTOCOL.md, section 10. */
static const uint8_t doc_hello[] = {
	0x5a, 0x52, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04,
	0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
static const uint8_t doc_request[] = {
	0x5a, 0x52, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x40, 0x42, 0x0f, 0x00, 0x05, 0x00, 0x00, 0x00, 'h', 'e', 'l', 'l', 'o',
};
static const uint8_t doc_response[] = {
	0x5a, 0x52, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 'h', 'e', 'l', 'l', 'o',
};
static const uint8_t doc_error[] = {
	0x5a, 0x52, 0x01, 0x04, 0x00, 0x00, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

Test(frame, protocol_doc_example)
{
	uint8_t buf[64];
	struct zc_frame f;
	struct zc_hello h;

	zc__frame_encode(buf, &(struct zc_frame){ .type = ZC_FT_HELLO,
						   .len = 16, .msg_len = 16 });
	zc__hello_encode(buf + ZC_FRAME_HDR_LEN,
			 &(struct zc_hello){ .max_message = 64u << 20,
					     .max_frame = 65536 });
	cr_assert(memcmp(buf, doc_hello, sizeof(doc_hello)) == 0);

	zc__frame_encode(buf, &(struct zc_frame){ .type = ZC_FT_REQUEST,
		.method = 1, .len = 5, .id = 1, .deadline_us = 1000000,
		.msg_len = 5 });
	memcpy(buf + ZC_FRAME_HDR_LEN, "hello", 5);
	cr_assert(memcmp(buf, doc_request, sizeof(doc_request)) == 0);

	zc__frame_encode(buf, &(struct zc_frame){ .type = ZC_FT_RESPONSE,
		.method = 1, .len = 5, .id = 1, .msg_len = 5 });
	memcpy(buf + ZC_FRAME_HDR_LEN, "hello", 5);
	cr_assert(memcmp(buf, doc_response, sizeof(doc_response)) == 0);

	zc__frame_encode(buf, &(struct zc_frame){ .type = ZC_FT_ERROR,
		.status = 3, .method = 7, .id = 1 });
	cr_assert(memcmp(buf, doc_error, sizeof(doc_error)) == 0);

	cr_assert_eq(zc__frame_decode(guard_place(&g, doc_hello,
						  sizeof(doc_hello)),
				      sizeof(doc_hello), &lim, &f), 48);
	cr_assert_eq(zc__hello_decode(doc_hello + 32, 16, &h), 0);
	cr_assert_eq(h.max_message, 64u << 20);
	cr_assert_eq(zc__frame_decode(guard_place(&g, doc_request,
						  sizeof(doc_request)),
				      sizeof(doc_request), &lim, &f), 37);
	cr_assert_eq(f.deadline_us, 1000000);
}

Test(frame, type_names)
{
	cr_assert_str_eq(zc__frame_type_name(ZC_FT_REQUEST), "request");
	cr_assert_str_eq(zc__frame_type_name(ZC_FT_GOAWAY), "goaway");
	cr_assert_str_eq(zc__frame_type_name(0), "?");
	cr_assert_str_eq(zc__frame_type_name(200), "?");
}

/* The chain decoder: header straddling views, payload in a third view,
 * every cut point; nothing consumed, same answers as the flat decoder. */
Test(frame, chain_across_views)
{
	struct zc_pool_config pc = { .buf_size = 4096 };
	uint8_t bytes[ZC_FRAME_HDR_LEN + 100];
	struct zc_pool *pool;
	struct zc_frame f;

	cr_assert_eq(zc_pool_create(&pc, &pool), 0);
	zc__frame_encode(bytes, &(struct zc_frame){ .type = ZC_FT_REQUEST,
		.method = 300, .len = 100, .id = 5, .msg_len = 100 });
	for (size_t i = 0; i < 100; i++)
		bytes[ZC_FRAME_HDR_LEN + i] = (uint8_t)i;
	for (size_t cut1 = 1; cut1 < ZC_FRAME_HDR_LEN; cut1 += 3) {
		size_t cuts[3] = { cut1, ZC_FRAME_HDR_LEN + 7, sizeof(bytes) };
		struct zc_chain c;
		size_t off = 0;

		zc_chain_init(&c);
		for (int k = 0; k < 3; k++) {
			struct zc_buf *b;
			struct zc_view v;

			cr_assert_eq(zc_buf_alloc(pool, &b), 0);
			memcpy(zc_buf_data(b), bytes + off, cuts[k] - off);
			cr_assert_eq(zc_view_adopt(&v, b, 0, cuts[k] - off), 0);
			cr_assert_eq(zc_chain_append(&c, &v), 0);
			off = cuts[k];
			if (k < 2)
				cr_assert_eq(zc__frame_decode_chain(&c, &lim,
								    &f),
					     -EAGAIN);
		}
		cr_assert_eq(zc__frame_decode_chain(&c, &lim, &f),
			     (int)sizeof(bytes));
		cr_assert_eq(f.id, 5);
		cr_assert_eq(f.len, 100);
		cr_assert_eq(zc_chain_len(&c), sizeof(bytes));
		/* Break the magic: malformed, whatever the cut. */
		((uint8_t *)zc_view_data(zc_chain_view(&c, 0)))[0] ^= 1;
		cr_assert_eq(zc__frame_decode_chain(&c, &lim, &f), -EPROTO);
		zc_chain_release(&c);
	}
	cr_assert_eq(zc_pool_destroy(pool), 0);
}
