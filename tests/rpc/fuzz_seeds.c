/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/fuzz_seeds.c - write the seed corpus of fuzz_frame: one file per
 * frame type plus a few streams of several frames, all made by the encoder.
 * Usage: fuzz_seeds DIR
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "frame.h"

static int put(const char *dir, const char *name, const void *p, size_t len)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	if (!fp)
		return -1;
	fwrite(p, 1, len, fp);
	return fclose(fp);
}

static size_t frame(uint8_t *dst, const struct zc_frame *f)
{
	zc__frame_encode(dst, f);
	memset(dst + ZC_FRAME_HDR_LEN, 'x', f->len);
	if (f->type == ZC_FT_HELLO)
		zc__hello_encode(dst + ZC_FRAME_HDR_LEN, &(struct zc_hello){
			.max_message = 1 << 20, .max_frame = 4096 });
	return ZC_FRAME_HDR_LEN + f->len;
}

int main(int argc, char **argv)
{
	static const struct zc_frame fs[] = {
		{ .type = ZC_FT_HELLO, .len = 16, .msg_len = 16 },
		{ .type = ZC_FT_REQUEST, .method = 1, .len = 5, .id = 1,
		  .deadline_us = 1000, .msg_len = 5 },
		{ .type = ZC_FT_REQUEST, .flags = ZC_FF_MORE, .method = 256,
		  .len = ZC_FRAG_MIN, .id = 2, .msg_len = ZC_FRAG_MIN + 50 },
		{ .type = ZC_FT_RESPONSE, .method = 1, .len = 5, .id = 1,
		  .msg_len = 5 },
		{ .type = ZC_FT_ERROR, .status = 4, .len = 3, .id = 3,
		  .msg_len = 3 },
		{ .type = ZC_FT_CANCEL, .id = 4 },
		{ .type = ZC_FT_PING, .len = 8, .msg_len = 8 },
		{ .type = ZC_FT_PONG, .len = 8, .msg_len = 8 },
		{ .type = ZC_FT_GOAWAY, .id = 9, .len = 4, .msg_len = 4 },
	};
	static uint8_t stream[1 << 14];
	uint8_t one[ZC_FRAME_HDR_LEN + ZC_FRAG_MIN];
	size_t n = 0;
	char name[32];

	if (argc != 2)
		return 2;
	if (mkdir(argv[1], 0755) && errno != EEXIST)
		return 1;
	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
		size_t len = frame(one, &fs[i]);

		snprintf(name, sizeof(name), "frame-%s",
			 zc__frame_type_name(fs[i].type));
		if (fs[i].flags)
			strcat(name, "-more");
		if (put(argv[1], name, one, len))
			return 1;
		memcpy(stream + n, one, len);
		n += len;
	}
	return put(argv[1], "stream-all", stream, n) ? 1 : 0;
}
