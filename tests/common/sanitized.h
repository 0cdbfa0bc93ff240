/* SPDX-License-Identifier: MIT */
/*
 * tests/common/sanitized.h - ZC_TEST_SANITIZED is 1 in ASan and TSan
 * builds, where tests shrink their loads or lengthen their runs.
 */
#ifndef ZC_TESTS_SANITIZED_H
#define ZC_TESTS_SANITIZED_H

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define ZC_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define ZC_TEST_SANITIZED 1
#endif
#endif
#ifndef ZC_TEST_SANITIZED
#define ZC_TEST_SANITIZED 0
#endif

#endif
