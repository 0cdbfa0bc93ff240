/* SPDX-License-Identifier: MIT */
/*
 * rpc/frame.c - encode and validate zcrpc frame headers.
 *
 * Validation is strict: every field that the protocol fixes for a frame
 * type must hold its fixed value.  A lenient decoder would let a broken or
 * hostile peer park state in fields we never look at; a strict one turns
 * every such peer into one closed connection and one counter.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "frame.h"

static const char *const type_names[] = {
	[ZC_FT_HELLO]	 = "hello",
	[ZC_FT_REQUEST]	 = "request",
	[ZC_FT_RESPONSE] = "response",
	[ZC_FT_ERROR]	 = "error",
	[ZC_FT_CANCEL]	 = "cancel",
	[ZC_FT_PING]	 = "ping",
	[ZC_FT_PONG]	 = "pong",
	[ZC_FT_GOAWAY]	 = "goaway",
};

const char *zc__frame_type_name(unsigned type)
{
	if (type == 0 || type > ZC_FT_LAST)
		return "?";
	return type_names[type];
}

/* Per-type shape rules; 0 when @f is a legal frame of its type. */
static int check_type(const struct zc_frame *f)
{
	bool single = !(f->flags & ZC_FF_MORE);

	switch (f->type) {
	case ZC_FT_HELLO:
		if (f->len != ZC_FRAME_HELLO_LEN || f->id || f->method ||
		    f->status || f->deadline_us || f->flags)
			return -EPROTO;
		break;
	case ZC_FT_REQUEST:
		if (!f->id || !f->method || f->status)
			return -EPROTO;
		/* Tiny non-final fragments would let a peer make us do
		 * per-fragment work for almost no bytes. */
		if (!single && f->len < ZC_FRAG_MIN)
			return -EPROTO;
		return 0;
	case ZC_FT_RESPONSE:
		if (!f->id || f->status || f->deadline_us)
			return -EPROTO;
		if (!single && f->len < ZC_FRAG_MIN)
			return -EPROTO;
		return 0;
	case ZC_FT_ERROR:
		if (!f->id || !f->status || f->deadline_us || f->flags)
			return -EPROTO;
		break;
	case ZC_FT_CANCEL:
		if (!f->id || f->len || f->status || f->deadline_us ||
		    f->flags)
			return -EPROTO;
		break;
	case ZC_FT_PING:
	case ZC_FT_PONG:
		if (f->len != ZC_FRAME_PING_LEN || f->id || f->method ||
		    f->status || f->deadline_us || f->flags)
			return -EPROTO;
		break;
	case ZC_FT_GOAWAY:
		if (f->method || f->deadline_us || f->flags)
			return -EPROTO;
		break;
	default:
		return -EPROTO;
	}
	/* Types that are never fragmented carry msg_len == len. */
	return f->msg_len == f->len ? 0 : -EPROTO;
}

void zc__frame_encode(void *dst, const struct zc_frame *f)
{
	uint8_t *p = dst;

	assert(check_type(f) == 0 && f->msg_len >= f->len);
	zc__put16(p + 0, ZC_FRAME_MAGIC);
	p[2] = ZC_FRAME_VERSION;
	p[3] = f->type;
	zc__put16(p + 4, f->flags);
	zc__put16(p + 6, f->status);
	zc__put32(p + 8, f->method);
	zc__put32(p + 12, f->len);
	zc__put64(p + 16, f->id);
	zc__put32(p + 24, f->deadline_us);
	zc__put32(p + 28, f->msg_len);
}

int zc__frame_decode_hdr(const void *hdr, const struct zc_frame_limits *lim,
			 struct zc_frame *f)
{
	const uint8_t *p = hdr;
	struct zc_frame h;
	int ret;

	if (zc__get16(p) != ZC_FRAME_MAGIC)
		return -EPROTO;
	h.version = p[2];
	if (h.version != ZC_FRAME_VERSION)
		return -EPROTONOSUPPORT;
	h.type = p[3];
	h.flags = zc__get16(p + 4);
	h.status = zc__get16(p + 6);
	h.method = zc__get32(p + 8);
	h.len = zc__get32(p + 12);
	h.id = zc__get64(p + 16);
	h.deadline_us = zc__get32(p + 24);
	h.msg_len = zc__get32(p + 28);

	if (h.type == 0 || h.type > ZC_FT_LAST || (h.flags & ~ZC_FF_KNOWN))
		return -EPROTO;
	if (h.len > lim->max_frame)
		return -EMSGSIZE;
	if (h.msg_len < h.len)
		return -EPROTO;
	ret = check_type(&h);
	if (ret)
		return ret;
	*f = h;
	return 0;
}

int zc__frame_decode(const void *p, size_t len,
		     const struct zc_frame_limits *lim, struct zc_frame *f)
{
	int ret;

	if (len < ZC_FRAME_HDR_LEN)
		return -EAGAIN;
	ret = zc__frame_decode_hdr(p, lim, f);
	if (ret)
		return ret;
	if (len - ZC_FRAME_HDR_LEN < f->len)
		return -EAGAIN;
	return (int)(ZC_FRAME_HDR_LEN + f->len);
}

void zc__hello_encode(void *dst, const struct zc_hello *h)
{
	uint8_t *p = dst;

	zc__put32(p + 0, h->max_message);
	zc__put32(p + 4, h->max_frame);
	zc__put32(p + 8, h->max_inflight);
	zc__put32(p + 12, h->flags);
}

int zc__hello_decode(const void *p, size_t len, struct zc_hello *h)
{
	const uint8_t *b = p;
	struct zc_hello v;

	if (len != ZC_FRAME_HELLO_LEN)
		return -EPROTO;
	v.max_message = zc__get32(b + 0);
	v.max_frame = zc__get32(b + 4);
	v.max_inflight = zc__get32(b + 8);
	v.flags = zc__get32(b + 12);
	if (v.max_frame < ZC_FRAME_MIN || v.max_frame > ZC_FRAME_MAX ||
	    !v.max_message || v.flags)
		return -EPROTO;
	*h = v;
	return 0;
}
