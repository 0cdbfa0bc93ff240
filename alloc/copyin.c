/* SPDX-License-Identifier: MIT */
/*
 * alloc/copyin.c - zc_chain_copyin(): a chain from plain bytes, from any
 * thread, in one call (malloc, copy, zc_buf_wrap, view, append).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zcrpc/alloc.h>

/* The copy is ours: free it once the last view and send are done. */
static void copyin_release(void *arg, void *data)
{
	(void)arg;
	free(data);
}

int zc_chain_copyin(struct zc_chain *c, struct zc_pool *pool,
		    const void *data, size_t len)
{
	struct zc_buf *buf;
	struct zc_view v;
	void *copy;
	int ret;

	if (!c || !pool || !data || !len || len > UINT32_MAX)
		return -EINVAL;
	copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	ret = zc_buf_wrap(pool, copy, len, copyin_release, NULL, &buf);
	if (ret) {
		free(copy);
		return ret;
	}
	/* From here the buffer owns the copy: dropping its one reference
	 * frees it (through the pool's deferred list off its owner). */
	ret = zc_view_adopt(&v, buf, 0, len);
	if (ret) {
		zc_buf_put(buf);
		return ret;
	}
	ret = zc_chain_append(c, &v);
	if (ret)
		zc_view_release(&v);
	return ret;
}
