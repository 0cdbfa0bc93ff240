/* SPDX-License-Identifier: MIT */
/*
 * tests/common/mini_criterion.h - the subset of Criterion's API our tests
 * use, run in-process, for ThreadSanitizer builds only.
 *
 * Why: Criterion 2.4 cannot start under TSan.  Its BoxFort arena mmap()s
 * with MAP_FIXED at random addresses in [0x2000'0000'0000, 0x6000'0000'0000),
 * nearly all of which TSan reserves for its shadow, so the runner aborts
 * with "Could not initialize inheritable arena" (Snaipe/Criterion#274),
 * and when it does find a hole it crashes later in its sandbox.  The test
 * files stay unchanged: in TSan builds zc_add_test() puts
 * tests/common/tsan first on the include path, whose criterion/criterion.h
 * is this header.
 *
 * Semantics kept: suites' .init/.fini around each test, the assertion
 * macros with an optional printf-style message, exit status 0 only if
 * every test passed.  Not kept: process isolation (the first failure ends
 * the run) and timeouts (ctest's TIMEOUT still applies).
 */
#ifndef ZC_TESTS_MINI_CRITERION_H
#define ZC_TESTS_MINI_CRITERION_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mc_cfg {
	int unused;
	void (*init)(void);
	void (*fini)(void);
	double timeout;
};

struct mc_test {
	const char *suite, *name;
	void (*fn)(void);
	struct mc_cfg cfg;
	struct mc_test *next;
};

struct mc_suite {
	const char *name;
	struct mc_cfg cfg;
	struct mc_suite *next;
};

static struct mc_test *mc_head, **mc_tail = &mc_head;
static struct mc_suite *mc_suites;
static const struct mc_test *mc_current;

static inline void mc_register(struct mc_test *t)
{
	*mc_tail = t;
	mc_tail = &t->next;
}

static inline void mc_register_suite(struct mc_suite *s)
{
	s->next = mc_suites;
	mc_suites = s;
}

static inline const struct mc_cfg *mc_suite_cfg(const char *name)
{
	for (const struct mc_suite *s = mc_suites; s; s = s->next)
		if (!strcmp(s->name, name))
			return &s->cfg;
	return NULL;
}

/* No format attribute: an empty message is the common case. */
__attribute__((noreturn)) static inline void
mc_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[FAIL] %s::%s: %s:%d: %s", mc_current->suite,
		mc_current->name, file, line, expr);
	if (*fmt) {
		fputs(": ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
	exit(1);
}

#define TestSuite(s, ...)						\
	static struct mc_suite mc_suite_##s = {				\
		#s, { 0, __VA_ARGS__ }, NULL,				\
	};								\
	__attribute__((constructor)) static void mc_reg_suite_##s(void) \
	{								\
		mc_register_suite(&mc_suite_##s);			\
	}

#define Test(s, n, ...)							\
	static void mc_fn_##s##_##n(void);				\
	static struct mc_test mc_t_##s##_##n = {			\
		#s, #n, mc_fn_##s##_##n,				\
		{ 0, __VA_ARGS__ }, NULL,				\
	};								\
	__attribute__((constructor)) static void			\
	mc_reg_##s##_##n(void)						\
	{								\
		mc_register(&mc_t_##s##_##n);				\
	}								\
	static void mc_fn_##s##_##n(void)

#define MC_CHECK(cond, expr, ...)					\
	do {								\
		if (!(cond))						\
			mc_fail(__FILE__, __LINE__, expr, "" __VA_ARGS__); \
	} while (0)

#define cr_assert(c, ...)	   MC_CHECK((c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...)	   MC_CHECK(!(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_eq(a, b, ...)	   MC_CHECK((a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...)   MC_CHECK((a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...)	   MC_CHECK((a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...)   MC_CHECK((a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...)	   MC_CHECK((a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...)   MC_CHECK((a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...)	   MC_CHECK((p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) MC_CHECK((p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_fail(...)					\
	mc_fail(__FILE__, __LINE__, "cr_assert_fail", "" __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) \
	MC_CHECK(!strcmp((a), (b)), #a " eq " #b, __VA_ARGS__)
#define cr_log_info(...) (printf("[----] " __VA_ARGS__), putchar('\n'))
#define cr_log_warn(...) cr_log_info(__VA_ARGS__)
#define cr_log_error(...) cr_log_info(__VA_ARGS__)
/* The first failure ends the run here, so expect and assert coincide. */
#define cr_expect(...)		cr_assert(__VA_ARGS__)
#define cr_expect_eq(...)	cr_assert_eq(__VA_ARGS__)
#define cr_expect_neq(...)	cr_assert_neq(__VA_ARGS__)
#define cr_expect_lt(...)	cr_assert_lt(__VA_ARGS__)
#define cr_expect_leq(...)	cr_assert_leq(__VA_ARGS__)
#define cr_expect_gt(...)	cr_assert_gt(__VA_ARGS__)
#define cr_expect_geq(...)	cr_assert_geq(__VA_ARGS__)
/* Criterion's skip ends the test; Test bodies return void, so return. */
#define cr_skip_test(...) \
	do { printf("[SKIP] " __VA_ARGS__); putchar('\n'); return; } while (0)

int main(int argc, char **argv)
{
	unsigned n = 0;

	(void)argc;
	(void)argv;
	for (const struct mc_test *t = mc_head; t; t = t->next) {
		const struct mc_cfg *s = mc_suite_cfg(t->suite);

		mc_current = t;
		printf("[RUN ] %s::%s\n", t->suite, t->name);
		fflush(stdout);
		if (s && s->init)
			s->init();
		if (t->cfg.init)
			t->cfg.init();
		t->fn();
		if (t->cfg.fini)
			t->cfg.fini();
		if (s && s->fini)
			s->fini();
		printf("[PASS] %s::%s\n", t->suite, t->name);
		n++;
	}
	printf("[====] Synthesis: Tested: %u | Passing: %u | Failing: 0\n", n, n);
	return n ? 0 : 1;
}

#endif
