/* SPDX-License-Identifier: MIT */
/*
 * tests/alloc/test_chain.c - chains: append, cut, consume, pull-up,
 * copy-out (alloc/chain.c), copy-in (alloc/copyin.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define NBUFS 3

static struct zc_pool *pool;
static struct zc_buf *bufs[NBUFS];
/* master: views spanning three buffers, one of them twice; expect[] is
 * its content. */
static struct zc_chain master;
static unsigned char expect[8192];
static size_t total;

static const struct { int buf; uint32_t off, len; } layout[] = {
	{ 0, 10, 5 }, { 1, 0, 1 }, { 2, 100, 300 }, { 0, 2000, 17 },
	{ 1, 50, 1000 }, { 2, 100, 20 }, { 0, 4095, 1 },
};
#define NLAYOUT (sizeof(layout) / sizeof(layout[0]))

static void setup(void)
{
	pool = small_pool(ZC_FREE_OWNER, 32 * 4096);
	zc_chain_init(&master);
	total = 0;
	for (int i = 0; i < NBUFS; i++) {
		unsigned char *d;

		cr_assert_eq(zc_buf_alloc(pool, &bufs[i]), 0);
		d = zc_buf_data(bufs[i]);
		for (int j = 0; j < 4096; j++)
			d[j] = (unsigned char)(j * 7 + i * 13 + (j >> 8));
	}
	for (size_t i = 0; i < NLAYOUT; i++) {
		struct zc_view v;

		cr_assert_eq(zc_view_init(&v, bufs[layout[i].buf], layout[i].off,
					  layout[i].len), 0);
		memcpy(expect + total, zc_view_data(&v), v.len);
		total += v.len;
		cr_assert_eq(zc_chain_append(&master, &v), 0);
		cr_assert_null(v.buf, "append moves the reference");
	}
}

static void teardown(void)
{
	zc_chain_release(&master);
	for (int i = 0; i < NBUFS; i++) {
		cr_assert_eq(zc_buf_refs(bufs[i]), 1, "leaked reference");
		zc_buf_put(bufs[i]);
	}
	cr_assert_eq(stats_of(pool).in_use, 0);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

TestSuite(chain, .init = setup, .fini = teardown);

static uint32_t refs_total(void)
{
	uint32_t r = 0;

	for (int i = 0; i < NBUFS; i++)
		r += zc_buf_refs(bufs[i]);
	return r;
}

/* Content, length and non-empty views of @c against expect[off..]. */
static void check_chain(const struct zc_chain *c, size_t off, size_t len)
{
	unsigned char *tmp = malloc(len + 1);
	size_t sum = 0;

	cr_assert_eq(zc_chain_len(c), len);
	for (unsigned i = 0; i < zc_chain_nviews(c); i++) {
		cr_assert_gt(zc_chain_view(c, i)->len, 0);
		sum += zc_chain_view(c, i)->len;
	}
	cr_assert_eq(sum, len);
	cr_assert_eq(zc_chain_copyout(c, 0, tmp, len + 1), len);
	cr_assert_eq(memcmp(tmp, expect + off, len), 0, "content at %zu", off);
	free(tmp);
}

Test(chain, master_layout)
{
	cr_assert_eq(zc_chain_nviews(&master), NLAYOUT);
	check_chain(&master, 0, total);
	cr_assert_eq(refs_total(), NBUFS + NLAYOUT);
}

Test(chain, empty_append_is_dropped)
{
	struct zc_chain c;
	struct zc_view v;

	zc_chain_init(&c);
	cr_assert_eq(zc_view_init(&v, bufs[0], 5, 0), 0);
	cr_assert_eq(zc_chain_append(&c, &v), 0);
	cr_assert_null(v.buf);
	cr_assert_eq(zc_chain_nviews(&c), 0);
	cr_assert_eq(zc_buf_refs(bufs[0]), 1 + 3);
	zc_chain_release(&c);
}

Test(chain, grows_past_inline_and_compacts)
{
	struct zc_chain c;

	zc_chain_init(&c);
	for (size_t i = 0; i < 100; i++) {
		struct zc_view v;

		cr_assert_eq(zc_view_init(&v, bufs[2], i, 1), 0);
		cr_assert_eq(zc_chain_append(&c, &v), 0);
	}
	cr_assert_eq(zc_chain_nviews(&c), 100);
	cr_assert_eq(zc_chain_len(&c), 100);
	zc_chain_consume(&c, 50);
	cr_assert_eq(zc_chain_nviews(&c), 50);
	for (size_t i = 100; i < 160; i++) {
		struct zc_view v;

		cr_assert_eq(zc_view_init(&v, bufs[2], i, 1), 0);
		cr_assert_eq(zc_chain_append(&c, &v), 0);
	}
	cr_assert_eq(zc_chain_nviews(&c), 110);
	for (unsigned i = 0; i < 110; i++)
		cr_assert_eq(zc_chain_view(&c, i)->off, 50 + i);
	cr_assert_eq(zc_buf_refs(bufs[2]), 1 + 2 + 110);
	/* A chain moves by assignment; the source is then forgotten. */
	{
		struct zc_chain moved = c;

		zc_chain_release(&moved);
	}
	cr_assert_eq(zc_buf_refs(bufs[2]), 1 + 2);
}

Test(chain, append_clone_shares_every_view)
{
	struct zc_chain c;

	zc_chain_init(&c);
	cr_assert_eq(zc_chain_append_clone(&c, &master), 0);
	cr_assert_eq(zc_chain_append_clone(&c, &master), 0);
	cr_assert_eq(zc_chain_nviews(&c), 2 * NLAYOUT);
	cr_assert_eq(zc_chain_len(&c), 2 * total);
	cr_assert_eq(refs_total(), NBUFS + 3 * NLAYOUT);
	check_chain(&master, 0, total);
	zc_chain_release(&c);
	cr_assert_eq(zc_chain_nviews(&c), 0);
	cr_assert_eq(zc_chain_len(&c), 0);
	cr_assert_eq(refs_total(), NBUFS + NLAYOUT);
}

/* A view boundary lies at @n: no view straddles it. */
static bool at_boundary(size_t n)
{
	size_t b = 0;

	for (size_t i = 0; i < NLAYOUT; i++) {
		if (b == n)
			return true;
		b += layout[i].len;
	}
	return b == n;
}

Test(chain, cut_at_every_offset)
{
	for (size_t n = 0; n <= total; n++) {
		struct zc_chain c, out;
		unsigned split = !at_boundary(n);

		zc_chain_init(&c);
		zc_chain_init(&out);
		cr_assert_eq(zc_chain_append_clone(&c, &master), 0);
		cr_assert_eq(zc_chain_cut(&c, n, &out), 0);
		check_chain(&out, 0, n);
		check_chain(&c, n, total - n);
		cr_assert_eq(zc_chain_nviews(&c) + zc_chain_nviews(&out),
			     NLAYOUT + split, "n=%zu", n);
		cr_assert_eq(refs_total(), NBUFS + 2 * NLAYOUT + split);
		/* Cutting onto a non-empty chain appends to its tail. */
		cr_assert_eq(zc_chain_cut(&c, zc_chain_len(&c), &out), 0);
		check_chain(&out, 0, total);
		cr_assert_eq(zc_chain_len(&c), 0);
		zc_chain_release(&c);
		zc_chain_release(&out);
		cr_assert_eq(refs_total(), NBUFS + NLAYOUT);
	}
}

Test(chain, cut_past_len_changes_nothing)
{
	struct zc_chain out;

	zc_chain_init(&out);
	cr_assert_eq(zc_chain_cut(&master, total + 1, &out), -EINVAL);
	check_chain(&master, 0, total);
	cr_assert_eq(zc_chain_nviews(&out), 0);
	cr_assert_eq(refs_total(), NBUFS + NLAYOUT);
}

Test(chain, consume_at_every_offset)
{
	for (size_t n = 0; n <= total; n++) {
		struct zc_chain c;

		zc_chain_init(&c);
		cr_assert_eq(zc_chain_append_clone(&c, &master), 0);
		zc_chain_consume(&c, n);
		check_chain(&c, n, total - n);
		zc_chain_release(&c);
		cr_assert_eq(refs_total(), NBUFS + NLAYOUT);
	}
	/* Consuming more than len empties the chain. */
	{
		struct zc_chain c;

		zc_chain_init(&c);
		cr_assert_eq(zc_chain_append_clone(&c, &master), 0);
		zc_chain_consume(&c, total + 10);
		cr_assert_eq(zc_chain_len(&c), 0);
		cr_assert_eq(zc_chain_nviews(&c), 0);
		zc_chain_release(&c);
	}
}

Test(chain, copyout_offsets)
{
	unsigned char tmp[64];

	cr_assert_eq(zc_chain_copyout(&master, total, tmp, sizeof(tmp)), 0);
	cr_assert_eq(zc_chain_copyout(&master, total + 5, tmp, sizeof(tmp)), 0);
	cr_assert_eq(zc_chain_copyout(&master, total - 10, tmp, sizeof(tmp)), 10);
	cr_assert_eq(memcmp(tmp, expect + total - 10, 10), 0);
	for (size_t off = 0; off + 64 <= total; off += 13) {
		cr_assert_eq(zc_chain_copyout(&master, off, tmp, 64), 64);
		cr_assert_eq(memcmp(tmp, expect + off, 64), 0);
	}
}

Test(chain, pullup_contiguous_is_noop)
{
	uint64_t allocated = stats_of(pool).allocated;

	cr_assert_eq(zc_chain_pullup(&master, layout[0].len, pool), 0);
	cr_assert_eq(stats_of(pool).allocated, allocated);
	cr_assert_eq(zc_chain_nviews(&master), NLAYOUT);
}

Test(chain, pullup_every_length)
{
	for (size_t n = 1; n <= total; n++) {
		struct zc_chain c;

		zc_chain_init(&c);
		cr_assert_eq(zc_chain_append_clone(&c, &master), 0);
		cr_assert_eq(zc_chain_pullup(&c, n, pool), 0, "n=%zu", n);
		cr_assert_geq(zc_chain_view(&c, 0)->len, n);
		check_chain(&c, 0, total);
		zc_chain_release(&c);
		cr_assert_eq(refs_total(), NBUFS + NLAYOUT, "n=%zu", n);
		cr_assert_eq(stats_of(pool).in_use, NBUFS);
	}
}

Test(chain, pullup_errors_leave_chain_unchanged)
{
	struct zc_chain big;
	struct zc_buf *hold[32];
	unsigned nhold = 0;

	cr_assert_eq(zc_chain_pullup(&master, 0, pool), -EINVAL);
	cr_assert_eq(zc_chain_pullup(&master, total + 1, pool), -EINVAL);

	zc_chain_init(&big);
	for (int i = 0; i < 2; i++) {
		struct zc_view v;

		cr_assert_eq(zc_view_init(&v, bufs[i], 0, 3000), 0);
		cr_assert_eq(zc_chain_append(&big, &v), 0);
	}
	cr_assert_eq(zc_chain_pullup(&big, 4097, pool), -EMSGSIZE);
	cr_assert_eq(zc_chain_nviews(&big), 2);
	zc_chain_release(&big);

	/* Exhaust the pool: pull-up fails with -ENOBUFS, nothing moves. */
	while (zc_buf_alloc(pool, &hold[nhold]) == 0)
		nhold++;
	cr_assert_eq(nhold, 32 - NBUFS);
	cr_assert_eq(zc_chain_pullup(&master, 100, pool), -ENOBUFS);
	cr_assert_eq(zc_chain_nviews(&master), NLAYOUT);
	check_chain(&master, 0, total);
	cr_assert_eq(refs_total(), NBUFS + NLAYOUT);
	while (nhold)
		zc_buf_put(hold[--nhold]);
	cr_assert_eq(zc_chain_pullup(&master, 100, pool), 0);
	check_chain(&master, 0, total);
	cr_assert_eq(stats_of(pool).in_use, NBUFS + 1);
}

/*
 * Pull-up while a source is shared: the fully copied source A is dropped
 * by the chain but stays alive for its other view and its in-flight send;
 * the partly copied source B stays referenced by the chain.
 */
Test(chain, pullup_keeps_shared_sources_alive)
{
	static char mem_a[100], mem_b[100];
	struct ext_probe pa = { .pool = pool }, pb = { .pool = pool };
	struct zc_buf *a, *b;
	struct zc_view va, vb, other;
	struct zc_chain c;
	char out[150];

	memset(mem_a, 'a', sizeof(mem_a));
	memset(mem_b, 'b', sizeof(mem_b));
	cr_assert_eq(zc_buf_wrap(pool, mem_a, 100, ext_probe_release, &pa, &a), 0);
	cr_assert_eq(zc_buf_wrap(pool, mem_b, 100, ext_probe_release, &pb, &b), 0);
	cr_assert_eq(zc_view_init(&other, a, 0, 100), 0);
	zc_buf_inflight_get(a);
	cr_assert_eq(zc_view_adopt(&va, a, 0, 100), 0);
	cr_assert_eq(zc_view_adopt(&vb, b, 0, 100), 0);
	zc_chain_init(&c);
	cr_assert_eq(zc_chain_append(&c, &va), 0);
	cr_assert_eq(zc_chain_append(&c, &vb), 0);

	cr_assert_eq(zc_chain_pullup(&c, 150, pool), 0);
	cr_assert_eq(zc_chain_nviews(&c), 2);
	cr_assert_eq(zc_chain_view(&c, 0)->len, 150);
	cr_assert_eq(zc_chain_view(&c, 1)->buf, b);
	cr_assert_eq(zc_chain_view(&c, 1)->off, 50);
	cr_assert_eq(zc_chain_copyout(&c, 0, out, 150), 150);
	cr_assert_eq(out[99], 'a');
	cr_assert_eq(out[100], 'b');
	cr_assert_eq(zc_buf_refs(a), 1);
	cr_assert_eq(zc_buf_inflight(a), 1);
	cr_assert_eq(atomic_load(&pa.calls), 0);
	zc_view_release(&other);
	cr_assert_eq(atomic_load(&pa.calls), 0, "in-flight send still holds A");
	zc_buf_inflight_put(a);
	cr_assert_eq(atomic_load(&pa.calls), 1);
	cr_assert_eq(atomic_load(&pb.calls), 0);
	zc_chain_release(&c);
	cr_assert_eq(atomic_load(&pb.calls), 1);
	cr_assert_eq(stats_of(pool).ext_released, 2);
}

/* A zeroed chain and ZC_CHAIN_INIT are empty chains that grow like any. */
Test(chain, zeroed_and_static_chains_work)
{
	struct zc_chain zeroed, init = ZC_CHAIN_INIT;
	struct zc_chain *cs[2] = { &zeroed, &init };

	memset(&zeroed, 0, sizeof(zeroed));
	for (int k = 0; k < 2; k++) {
		cr_assert_eq(zc_chain_len(cs[k]), 0);
		cr_assert_eq(zc_chain_append_clone(cs[k], &master), 0);
		check_chain(cs[k], 0, total);
		/* Past the inline slots: the heap array grows from a cap the
		 * zeroed struct never set. */
		cr_assert_eq(zc_chain_append_clone(cs[k], &master), 0);
		cr_assert_eq(zc_chain_nviews(cs[k]), 2 * NLAYOUT);
		cr_assert_eq(zc_chain_len(cs[k]), 2 * total);
		zc_chain_release(cs[k]);
	}
	cr_assert_eq(refs_total(), NBUFS + NLAYOUT);
}

/* pullup must copy here, and only the pool's owner may allocate. */
struct pullup_off_owner {
	struct zc_chain *c;
	int rc;
};

static void pullup_elsewhere(void *arg)
{
	struct pullup_off_owner *p = arg;

	p->rc = zc_chain_pullup(p->c, 100, pool);
}

Test(chain, pullup_off_owner_is_eperm)
{
	struct pullup_off_owner p = { .c = &master };

	on_thread(pullup_elsewhere, &p);
	cr_assert_eq(p.rc, -EPERM);
	check_chain(&master, 0, total);
}

/* zc_chain_copyin(): the bytes are copied (the source may change at
 * once), appended as one view after what the chain held, and the copy is
 * freed through the pool once the view is gone. */
Test(chain, copyin_copies_and_appends)
{
	char src[] = "plain bytes, copied in";
	size_t n = strlen(src);
	char got[64];

	cr_assert_eq(zc_chain_copyin(&master, pool, src, n), 0);
	memset(src, 'x', n);
	cr_assert_eq(zc_chain_len(&master), total + n);
	cr_assert_eq(zc_chain_nviews(&master), NLAYOUT + 1);
	cr_assert_eq(zc_chain_copyout(&master, total, got, sizeof(got)), n);
	cr_assert_eq(memcmp(got, "plain bytes, copied in", n), 0);
	cr_assert_eq(stats_of(pool).ext_wrapped, 1);
	zc_chain_consume(&master, zc_chain_len(&master));
	zc_pool_drain(pool);
	cr_assert_eq(stats_of(pool).ext_released, 1);
}

Test(chain, copyin_errors_leave_chain_unchanged)
{
	char b = 1;

	cr_assert_eq(zc_chain_copyin(&master, pool, &b, 0), -EINVAL);
	cr_assert_eq(zc_chain_copyin(&master, pool, NULL, 1), -EINVAL);
	cr_assert_eq(zc_chain_copyin(&master, NULL, &b, 1), -EINVAL);
	cr_assert_eq(zc_chain_len(&master), total);
	cr_assert_eq(zc_chain_nviews(&master), NLAYOUT);
	cr_assert_eq(stats_of(pool).ext_wrapped, 0);
}
