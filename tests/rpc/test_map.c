/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_map.c - rpc/util.c's id map against a plain array, under
 * random puts and deletes (backward-shift deletion is easy to get wrong).
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "internal.h"

#define KEYS 5000

Test(map, random_against_reference)
{
	static bool present[KEYS];
	struct zc__map m;
	uint64_t x = 88172645463325252ull;
	unsigned n = 0;

	zc__map_init(&m);
	for (int round = 0; round < 200000; round++) {
		uint64_t k;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* Sequential-looking ids, like request ids, plus big ones. */
		k = x % KEYS;
		if (present[k]) {
			cr_assert_eq(zc__map_del(&m, k + 1), (void *)(k + 100));
			present[k] = false;
			n--;
		} else {
			cr_assert_null(zc__map_get(&m, k + 1));
			cr_assert_eq(zc__map_put(&m, k + 1, (void *)(k + 100)), 0);
			present[k] = true;
			n++;
		}
		cr_assert_eq(m.n, n);
		if (round % 9973 == 0) {
			for (uint64_t j = 0; j < KEYS; j++)
				cr_assert_eq(zc__map_get(&m, j + 1),
					     present[j] ? (void *)(j + 100) :
							  NULL);
		}
	}
	/* Iteration sees each live key once. */
	uint32_t i = 0;
	unsigned seen = 0;
	uint64_t k;
	void *v;

	while (zc__map_next(&m, &i, &k, &v)) {
		cr_assert(present[k - 1]);
		cr_assert_eq(v, (void *)(k + 99));
		seen++;
	}
	cr_assert_eq(seen, n);
	cr_assert_null(zc__map_del(&m, UINT64_MAX));
	zc__map_free(&m);
	cr_assert_null(zc__map_get(&m, 1));
}
