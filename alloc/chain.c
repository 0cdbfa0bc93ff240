/* SPDX-License-Identifier: MIT */
/*
 * alloc/chain.c - scatter-gather chains of views.
 *
 * Invariants: live views are [head, head + n) of heap[] or inl[]; every
 * live view is non-empty; len is the sum of their lengths.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static struct zc_view *views(struct zc_chain *c)
{
	return c->heap ? c->heap : c->inl;
}

void zc_chain_init(struct zc_chain *c)
{
	memset(c, 0, sizeof(*c));
	c->cap = ZC_CHAIN_INLINE;
}

/* Make room for @extra more views at the tail; nothing changes on error. */
static int reserve(struct zc_chain *c, uint32_t extra)
{
	struct zc_view *v = views(c);
	uint64_t need = (uint64_t)c->n + extra;
	uint32_t cap;

	/* A zeroed struct is an empty chain whose inline slots are free. */
	if (!c->heap && c->cap < ZC_CHAIN_INLINE)
		c->cap = ZC_CHAIN_INLINE;
	cap = c->cap;
	if (c->head + need <= c->cap)
		return 0;
	/* Compact only when that frees at least half the array: then the
	 * next compaction is at least cap / 2 pushes away, and a chain cut
	 * at the head and fed at the tail (a receive queue) costs O(1) per
	 * view, never a memmove of the whole chain per push. */
	if (need <= c->cap / 2) {
		memmove(v, v + c->head, c->n * sizeof(*v));
		c->head = 0;
		return 0;
	}
	if (need > UINT32_MAX / 2 / sizeof(*v))
		return -ENOMEM;
	while (cap < need)
		cap *= 2;
	if (c->heap) {
		/* Compact first so realloc moves only live views. */
		memmove(v, v + c->head, c->n * sizeof(*v));
		c->head = 0;
		v = realloc(c->heap, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
	} else {
		v = malloc(cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memcpy(v, c->inl + c->head, c->n * sizeof(*v));
		c->head = 0;
	}
	c->heap = v;
	c->cap = cap;
	return 0;
}

/* Tail push into reserved room. */
static void push(struct zc_chain *c, const struct zc_view *v)
{
	assert(c->head + c->n < c->cap && v->len);
	views(c)[c->head + c->n++] = *v;
	c->len += v->len;
}

int zc_chain_append(struct zc_chain *c, struct zc_view *v)
{
	int ret;

	if (!v->len) {
		zc_view_release(v);
		return 0;
	}
	ret = reserve(c, 1);
	if (ret)
		return ret;
	push(c, v);
	v->buf = NULL;
	v->off = 0;
	v->len = 0;
	return 0;
}

int zc_chain_append_clone(struct zc_chain *c, const struct zc_chain *src)
{
	int ret;

	assert(c != src);
	ret = reserve(c, src->n);
	if (ret)
		return ret;
	for (unsigned i = 0; i < src->n; i++) {
		struct zc_view v;

		zc_view_clone(zc_chain_view(src, i), &v);
		push(c, &v);
	}
	return 0;
}

int zc_chain_cut(struct zc_chain *c, size_t n, struct zc_chain *out)
{
	struct zc_view *v = views(c) + c->head;
	uint32_t whole = 0;
	size_t left = n;
	int ret;

	assert(c != out);
	if (n > c->len)
		return -EINVAL;
	while (whole < c->n && v[whole].len <= left)
		left -= v[whole++].len;
	ret = reserve(out, whole + (left != 0));
	if (ret)
		return ret;
	for (uint32_t i = 0; i < whole; i++)
		push(out, &v[i]);
	if (left) {
		/* The straddling view: both halves share its buffer. */
		struct zc_view *s = &v[whole], part = *s;

		zc_buf_get(s->buf);
		part.len = (uint32_t)left;
		push(out, &part);
		s->off += (uint32_t)left;
		s->len -= (uint32_t)left;
	}
	c->head += whole;
	c->n -= whole;
	c->len -= n;
	if (!c->n)
		c->head = 0;
	return 0;
}

void zc_chain_consume(struct zc_chain *c, size_t n)
{
	struct zc_view *v = views(c);

	if (n > c->len)
		n = c->len;
	c->len -= n;
	while (n) {
		struct zc_view *f = &v[c->head];

		if (f->len > n) {
			f->off += (uint32_t)n;
			f->len -= (uint32_t)n;
			break;
		}
		n -= f->len;
		zc_view_release(f);
		c->head++;
		c->n--;
	}
	if (!c->n)
		c->head = 0;
}

int zc_chain_pullup(struct zc_chain *c, size_t n, struct zc_pool *pool)
{
	struct zc_view *v = views(c) + c->head;
	struct zc_view nv;
	struct zc_buf *b;
	uint32_t whole = 0;
	size_t done = 0;
	int ret;

	if (!n || n > c->len)
		return -EINVAL;
	if (v[0].len >= n)
		return 0;
	if (n > zc_pool_buf_size(pool))
		return -EMSGSIZE;
	ret = zc_buf_alloc(pool, &b);
	if (ret)
		return ret;

	/* Copy, then trim: views copied whole drop their reference, a view
	 * copied in part keeps its reference on the rest. */
	while (done < n) {
		struct zc_view *s = &v[whole];
		size_t m = n - done < s->len ? n - done : s->len;

		memcpy((char *)b->data + done, zc_view_data(s), m);
		done += m;
		if (m < s->len) {
			s->off += (uint32_t)m;
			s->len -= (uint32_t)m;
			break;
		}
		zc_view_release(s);
		whole++;
	}
	/* At least the first view went whole (it was shorter than n), so
	 * the new view takes the slot of the last whole one: no growth. */
	assert(whole >= 1);
	ret = zc_view_adopt(&nv, b, 0, n);
	assert(!ret);
	(void)ret;
	v[whole - 1] = nv;
	c->head += whole - 1;
	c->n -= whole - 1;
	return 0;
}

size_t zc_chain_copyout(const struct zc_chain *c, size_t off, void *dst,
			size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < c->n && done < len; i++) {
		const struct zc_view *v = zc_chain_view(c, i);
		size_t m;

		if (off >= v->len) {
			off -= v->len;
			continue;
		}
		m = v->len - off;
		if (m > len - done)
			m = len - done;
		memcpy((char *)dst + done, (const char *)zc_view_data(v) + off, m);
		done += m;
		off = 0;
	}
	return done;
}

void zc_chain_release(struct zc_chain *c)
{
	struct zc_view *v = views(c);

	for (uint32_t i = 0; i < c->n; i++)
		zc_view_release(&v[c->head + i]);
	free(c->heap);
	zc_chain_init(c);
}
