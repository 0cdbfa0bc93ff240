/* SPDX-License-Identifier: MIT */
/*
 * tests/alloc/test_view.c - views: init, adopt, clone, slice, split,
 * release (alloc/view.c).
 */
#include <errno.h>
#include <string.h>

#include "helpers.h"

static struct zc_pool *pool;
static struct zc_buf *buf;

static void setup(void)
{
	pool = small_pool(ZC_FREE_OWNER, 16 * 4096);
	cr_assert_eq(zc_buf_alloc(pool, &buf), 0);
	for (int i = 0; i < 4096; i++)
		((unsigned char *)zc_buf_data(buf))[i] = (unsigned char)i;
}

static void teardown(void)
{
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

TestSuite(view, .init = setup, .fini = teardown);

Test(view, init_takes_a_reference_adopt_does_not)
{
	struct zc_view a, b;

	cr_assert_eq(zc_view_init(&a, buf, 10, 100), 0);
	cr_assert_eq(zc_buf_refs(buf), 2);
	cr_assert_eq(a.buf, buf);
	cr_assert_eq(a.off, 10);
	cr_assert_eq(a.len, 100);
	cr_assert_eq(*(unsigned char *)zc_view_data(&a), 10);
	cr_assert_eq(zc_view_adopt(&b, buf, 0, 4096), 0);
	cr_assert_eq(zc_buf_refs(buf), 2);
	zc_view_release(&a);
	cr_assert_eq(zc_buf_refs(buf), 1);
	zc_view_release(&b);
	cr_assert_eq(stats_of(pool).in_use, 0);
}

Test(view, out_of_range_takes_nothing)
{
	struct zc_view v = { 0 };

	cr_assert_eq(zc_view_init(&v, buf, 4096, 1), -EINVAL);
	cr_assert_eq(zc_view_init(&v, buf, 1, 4096), -EINVAL);
	cr_assert_eq(zc_view_init(&v, buf, 4097, 0), -EINVAL);
	cr_assert_eq(zc_view_init(&v, buf, SIZE_MAX, 2), -EINVAL);
	cr_assert_eq(zc_view_adopt(&v, buf, 0, 4097), -EINVAL);
	cr_assert_eq(zc_view_init(&v, NULL, 0, 0), -EINVAL);
	cr_assert_eq(zc_buf_refs(buf), 1);
	cr_assert_null(v.buf);
	/* Whole-buffer and empty-at-end views are in range. */
	cr_assert_eq(zc_view_init(&v, buf, 4096, 0), 0);
	zc_view_release(&v);
	cr_assert_eq(zc_buf_refs(buf), 1);
	zc_buf_put(buf);
}

Test(view, clone_and_slice_share_the_buffer)
{
	struct zc_view v, c, s, e = { 0 }, ec;

	cr_assert_eq(zc_view_adopt(&v, buf, 100, 200), 0);
	zc_view_clone(&v, &c);
	cr_assert_eq(zc_buf_refs(buf), 2);
	cr_assert_eq(c.off, 100);
	cr_assert_eq(c.len, 200);
	cr_assert_eq(zc_view_slice(&v, 50, 150, &s), 0);
	cr_assert_eq(s.off, 150);
	cr_assert_eq(s.len, 150);
	cr_assert_eq(*(unsigned char *)zc_view_data(&s), 150);
	cr_assert_eq(zc_buf_refs(buf), 3);
	cr_assert_eq(zc_view_slice(&v, 50, 151, &ec), -EINVAL);
	cr_assert_eq(zc_view_slice(&v, 201, 0, &ec), -EINVAL);
	cr_assert_eq(zc_buf_refs(buf), 3);
	/* Empty views clone and slice to empty views. */
	zc_view_clone(&e, &ec);
	cr_assert_null(ec.buf);
	cr_assert_eq(zc_view_slice(&e, 0, 0, &ec), 0);
	cr_assert_null(ec.buf);
	zc_view_release(&ec);
	zc_view_release(&v);
	zc_view_release(&c);
	cr_assert_eq(stats_of(pool).in_use, 1);
	zc_view_release(&s);
	cr_assert_eq(stats_of(pool).in_use, 0);
}

Test(view, split_at_every_point)
{
	for (size_t at = 0; at <= 64; at++) {
		struct zc_view v, t;

		cr_assert_eq(zc_view_init(&v, buf, 1000, 64), 0);
		cr_assert_eq(zc_view_split(&v, at, &t), 0);
		cr_assert_eq(v.len, at);
		cr_assert_eq(v.off, 1000);
		cr_assert_eq(t.len, 64 - at);
		cr_assert_eq(t.off, 1000 + at);
		cr_assert_eq(t.buf, buf, "empty side still holds its reference");
		cr_assert_eq(zc_buf_refs(buf), 3);
		zc_view_release(&v);
		zc_view_release(&t);
		cr_assert_eq(zc_buf_refs(buf), 1);
	}
	{
		struct zc_view v, t = { 0 };

		cr_assert_eq(zc_view_init(&v, buf, 0, 10), 0);
		cr_assert_eq(zc_view_split(&v, 11, &t), -EINVAL);
		cr_assert_eq(v.len, 10);
		cr_assert_null(t.buf);
		zc_view_release(&v);
	}
	zc_buf_put(buf);
	cr_assert_eq(stats_of(pool).released_owner, 1);
}

Test(view, release_empty_is_harmless)
{
	struct zc_view v = { 0 };

	zc_view_release(&v);
	zc_view_release(&v);
	cr_assert_null(v.buf);
	zc_buf_put(buf);
}
