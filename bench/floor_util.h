/* SPDX-License-Identifier: MIT */
/*
 * floor_util.h - what the floor tools (rr_floor, conns_floor) share: the
 * clock, a whole send on a blocking socket, and a --wait list.
 */
#ifndef ZC_BENCH_FLOOR_UTIL_H
#define ZC_BENCH_FLOOR_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static inline double floor_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A blocking socket: all @len bytes of @buf, or -errno. */
static inline int floor_send_all(int fd, const char *buf, size_t len)
{
	size_t put = 0;

	while (put < len) {
		ssize_t n = send(fd, buf + put, len - put, MSG_NOSIGNAL);

		if (n < 0)
			return -errno;
		put += (size_t)n;
	}
	return 0;
}

/* "epoll,io_uring" against the @n names of @label -> @on[].  0, or
 * -EINVAL for an unknown or empty name. */
static inline int floor_parse_list(const char *list,
				   const char *const *label, unsigned n,
				   bool *on)
{
	const char *p = list;
	unsigned m;

	memset(on, 0, n * sizeof(*on));
	while (*p) {
		size_t len = strcspn(p, ",");

		for (m = 0; m < n; m++) {
			if (len == strlen(label[m]) &&
			    !strncmp(p, label[m], len))
				break;
		}
		if (m == n)
			return -EINVAL;
		on[m] = true;
		p += len + (p[len] == ',');
	}
	return p == list ? -EINVAL : 0;
}

#endif /* ZC_BENCH_FLOOR_UTIL_H */
