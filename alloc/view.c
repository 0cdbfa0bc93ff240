/* SPDX-License-Identifier: MIT */
/*
 * alloc/view.c - views: {buffer, offset, length}, one reference each.
 */
#include <errno.h>

#include "internal.h"

static bool range_ok(size_t cap, size_t off, size_t len)
{
	return off <= cap && len <= cap - off;
}

int zc_view_adopt(struct zc_view *v, struct zc_buf *buf, size_t off,
		  size_t len)
{
	if (!v || !buf || !range_ok(buf->cap, off, len))
		return -EINVAL;
	v->buf = buf;
	v->off = (uint32_t)off;
	v->len = (uint32_t)len;
	return 0;
}

int zc_view_init(struct zc_view *v, struct zc_buf *buf, size_t off,
		 size_t len)
{
	int ret = zc_view_adopt(v, buf, off, len);

	if (!ret)
		zc_buf_get(buf);
	return ret;
}

void zc_view_clone(const struct zc_view *v, struct zc_view *out)
{
	if (v->buf)
		zc_buf_get(v->buf);
	*out = *v;
}

int zc_view_slice(const struct zc_view *v, size_t off, size_t len,
		  struct zc_view *out)
{
	if (!range_ok(v->len, off, len))
		return -EINVAL;
	if (v->buf)
		zc_buf_get(v->buf);
	out->buf = v->buf;
	out->off = v->off + (uint32_t)off;
	out->len = (uint32_t)len;
	return 0;
}

int zc_view_split(struct zc_view *v, size_t at, struct zc_view *tail)
{
	if (at > v->len)
		return -EINVAL;
	if (v->buf)
		zc_buf_get(v->buf);
	tail->buf = v->buf;
	tail->off = v->off + (uint32_t)at;
	tail->len = v->len - (uint32_t)at;
	v->len = (uint32_t)at;
	return 0;
}

void zc_view_release(struct zc_view *v)
{
	if (v->buf)
		zc_buf_put(v->buf);
	v->buf = NULL;
	v->off = 0;
	v->len = 0;
}
