/* SPDX-License-Identifier: MIT */
/*
 * rpc/frame_chain.c - the frame decoder over a chain of receive views.
 *
 * Kept apart from frame.c so that the pure (ptr, len) codec and its fuzzer
 * need nothing but libc.
 */
#include <errno.h>

#include <zcrpc/alloc.h>

#include "frame.h"

int zc__frame_decode_chain(const struct zc_chain *c,
			   const struct zc_frame_limits *lim,
			   struct zc_frame *f)
{
	uint8_t hdr[ZC_FRAME_HDR_LEN];
	const uint8_t *p = hdr;
	size_t have = zc_chain_len(c);
	int ret;

	if (have < ZC_FRAME_HDR_LEN)
		return -EAGAIN;
	/* Common case: the header sits in the first view, parse in place. */
	if (zc_chain_view(c, 0)->len >= ZC_FRAME_HDR_LEN)
		p = zc_view_data(zc_chain_view(c, 0));
	else
		zc_chain_copyout(c, 0, hdr, sizeof(hdr));
	ret = zc__frame_decode_hdr(p, lim, f);
	if (ret)
		return ret;
	if (have - ZC_FRAME_HDR_LEN < f->len)
		return -EAGAIN;
	return (int)(ZC_FRAME_HDR_LEN + f->len);
}
