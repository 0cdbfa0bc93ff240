/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/json.h - just enough JSON to check zcperf's output: an
 * object of objects, numbers and strings, flattened into dotted paths
 * ("latency_us.p99").  Arrays are refused: zcperf prints none.
 */
#ifndef ZC_TESTS_BENCH_JSON_H
#define ZC_TESTS_BENCH_JSON_H

#include <stdbool.h>

#define JSON_MAX_LEAVES 256

struct json_leaf {
	char path[96];
	char val[96];
	bool is_str;
};

struct json_doc {
	struct json_leaf leaf[JSON_MAX_LEAVES];
	unsigned n;
};

/* Parse one object from @s; returns 0, or -1 on malformed input. */
int json_parse(const char *s, struct json_doc *d);
/* The leaf at @path, or NULL. */
const struct json_leaf *json_get(const struct json_doc *d, const char *path);
/* Its value as a number; NAN if absent or a string. */
double json_num(const struct json_doc *d, const char *path);

#endif /* ZC_TESTS_BENCH_JSON_H */
