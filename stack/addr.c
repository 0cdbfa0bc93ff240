/* SPDX-License-Identifier: MIT */
/*
 * stack/addr.c - addresses from strings and back: "host:port",
 * "[v6]:port", "unix:/path", "unix:@abstract".  Host names go through
 * getaddrinfo() on the calling thread (never a reactor's), and the
 * candidates come back in the order a connect should try them.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/un.h>

#include "internal.h"

#define UNIX_PREFIX "unix:"

static int parse_unix(const char *name, struct zc_addr *out)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
	size_t n = strlen(name);

	memset(out, 0, sizeof(*out));
	un->sun_family = AF_UNIX;
	if (name[0] == '@') {
		/* Linux abstract namespace: a leading NUL, no file, the
		 * length says where the name ends. */
		if (n < 2)
			return -EINVAL;
		if (n > sizeof(un->sun_path))
			return -ENAMETOOLONG;
		memcpy(un->sun_path + 1, name + 1, n - 1);
		out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
		return 1;
	}
	if (!n)
		return -EINVAL;
	if (n >= sizeof(un->sun_path))
		return -ENAMETOOLONG;
	memcpy(un->sun_path, name, n + 1);
	out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 1;
}

static int gai_errno(int gai)
{
	switch (gai) {
	case EAI_NONAME:
	case EAI_NODATA:
		return -ENOENT;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_FAMILY:
	case EAI_ADDRFAMILY:
		return -EAFNOSUPPORT;
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	default:
		return -EINVAL;
	}
}

static bool same_addr(const struct zc_addr *a, const struct zc_addr *b)
{
	return a->len == b->len && !memcmp(&a->ss, &b->ss, a->len);
}

/*
 * Happy Eyeballs order (RFC 8305 section 4): the resolver's order (RFC
 * 6724) within each family, the families alternating, starting with the
 * family of the resolver's first answer.  Duplicates are dropped.
 */
static unsigned order(const struct addrinfo *res, struct zc_addr *out,
		      unsigned max)
{
	int first = res->ai_family;
	unsigned n = 0;
	/* One cursor per family over the same list, taken in turn. */
	const struct addrinfo *cur[2] = { res, res };

	for (unsigned turn = 0; n < max && (cur[0] || cur[1]); turn ^= 1) {
		const struct addrinfo *ai = cur[turn];
		struct zc_addr a;
		bool dup = false;

		while (ai && (ai->ai_family == first) != (turn == 0))
			ai = ai->ai_next;
		cur[turn] = ai ? ai->ai_next : NULL;
		if (!ai || ai->ai_addrlen > sizeof(a.ss))
			continue;
		memset(&a, 0, sizeof(a));
		memcpy(&a.ss, ai->ai_addr, ai->ai_addrlen);
		a.len = ai->ai_addrlen;
		for (unsigned i = 0; i < n && !dup; i++)
			dup = same_addr(&out[i], &a);
		if (!dup)
			out[n++] = a;
	}
	return n;
}

int zc_addr_resolve(const char *str, unsigned flags, struct zc_addr *out,
		    unsigned max)
{
	struct addrinfo hints = {
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
		.ai_flags = AI_NUMERICHOST,
	};
	struct addrinfo *res = NULL;
	char host[256];
	const char *port, *h;
	size_t hlen;
	int ret, n;

	if (!str || !out || !max || (flags & ~ZC_ADDR_PASSIVE))
		return -EINVAL;
	if (!strncmp(str, UNIX_PREFIX, strlen(UNIX_PREFIX)))
		return parse_unix(str + strlen(UNIX_PREFIX), out);

	/* [v6]:port, or host:port where host holds no ':'. */
	if (str[0] == '[') {
		const char *end = strchr(str, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		h = str + 1;
		hlen = (size_t)(end - h);
		port = end + 2;
		hints.ai_family = AF_INET6;
	} else {
		port = strrchr(str, ':');
		if (!port)
			return -EINVAL;
		h = str;
		hlen = (size_t)(port - str);
		port++;
		if (memchr(h, ':', hlen))
			return -EINVAL;	/* a bare IPv6 address needs [] */
	}
	if (!*port || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = 0;
	if (!hlen || !strcmp(host, "*")) {
		/* Wildcard: [::], which takes IPv4 too (dual stack) unless
		 * the system sets bindv6only. */
		if (!(flags & ZC_ADDR_PASSIVE) || hints.ai_family)
			return -EINVAL;
		strcpy(host, "::");
		hints.ai_flags |= AI_PASSIVE;
	}
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret == EAI_NONAME && !hints.ai_family) {
		/* A name, not a number: this may block on DNS, so never on a
		 * reactor thread, where it would stall every connection. */
		if (zc_reactor_current())
			return -EDEADLK;
		hints.ai_flags &= ~AI_NUMERICHOST;
		ret = getaddrinfo(host, port, &hints, &res);
	}
	if (ret)
		return gai_errno(ret);
	n = (int)order(res, out, max);
	freeaddrinfo(res);
	return n ? n : -ENOENT;
}

int zc_addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
		   size_t size)
{
	char host[INET6_ADDRSTRLEN];
	int n;

	if (!sa || !buf || !size || len < sizeof(sa_family_t))
		return -EINVAL;
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const void *)sa;

		if (len < sizeof(*in))
			return -EINVAL;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		n = snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		if (len < sizeof(*in6))
			return -EINVAL;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		n = snprintf(buf, size, "[%s]:%u", host,
			     ntohs(in6->sin6_port));
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *un = (const void *)sa;
		size_t plen = len - offsetof(struct sockaddr_un, sun_path);

		if (len <= offsetof(struct sockaddr_un, sun_path))
			n = snprintf(buf, size, "unix:");	/* unnamed */
		else if (!un->sun_path[0])
			n = snprintf(buf, size, "unix:@%.*s", (int)(plen - 1),
				     un->sun_path + 1);
		else
			n = snprintf(buf, size, "unix:%.*s", (int)plen,
				     un->sun_path);
		break;
	}
	default:
		return -EAFNOSUPPORT;
	}
	if (n < 0)
		return -EINVAL;
	return (size_t)n >= size ? -ENOSPC : n;
}
