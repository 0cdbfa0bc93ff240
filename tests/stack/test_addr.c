/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_addr.c - addresses from strings and back
 * (stack/addr.c), and what zc_listen()/zc_connect() accept: Unix sockets
 * yes, REUSEPORT on them no, other families no.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <zcrpc/stack.h>

static struct zc_addr a[ZC_ADDR_MAX];

/* Parse @str, expect one candidate, format it back to @back. */
static void round_trip(const char *str, unsigned flags, int family,
		       const char *back)
{
	char buf[128];

	cr_assert_eq(zc_addr_resolve(str, flags, a, ZC_ADDR_MAX), 1, "%s", str);
	cr_assert_eq(a[0].ss.ss_family, family, "%s", str);
	cr_assert_eq(zc_addr_format((struct sockaddr *)&a[0].ss, a[0].len, buf,
				    sizeof(buf)), (int)strlen(back));
	cr_assert_str_eq(buf, back);
}

Test(addr, numeric_and_unix_round_trip)
{
	round_trip("127.0.0.1:7000", 0, AF_INET, "127.0.0.1:7000");
	round_trip("[::1]:80", 0, AF_INET6, "[::1]:80");
	round_trip("[::ffff:10.0.0.1]:1", 0, AF_INET6, "[::ffff:10.0.0.1]:1");
	round_trip("unix:/tmp/zc.sock", 0, AF_UNIX, "unix:/tmp/zc.sock");
	round_trip("unix:@zc-abstract", 0, AF_UNIX, "unix:@zc-abstract");
	/* The wildcard is for listening only: [::] takes IPv4 too. */
	round_trip(":7000", ZC_ADDR_PASSIVE, AF_INET6, "[::]:7000");
	round_trip("*:0", ZC_ADDR_PASSIVE, AF_INET6, "[::]:0");
}

Test(addr, unix_lengths)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&a[0].ss;

	cr_assert_eq(zc_addr_resolve("unix:/x", 0, a, 1), 1);
	cr_assert_eq(a[0].len, offsetof(struct sockaddr_un, sun_path) + 3);
	cr_assert_str_eq(un->sun_path, "/x");
	/* Abstract: a leading NUL, the length ends the name. */
	cr_assert_eq(zc_addr_resolve("unix:@ab", 0, a, 1), 1);
	cr_assert_eq(a[0].len, offsetof(struct sockaddr_un, sun_path) + 3);
	cr_assert_eq(un->sun_path[0], 0);
	cr_assert_eq(memcmp(un->sun_path + 1, "ab", 2), 0);
}

Test(addr, malformed_refused)
{
	char longp[200] = "unix:/";

	memset(longp + 6, 'p', sizeof(longp) - 7);
	cr_assert_eq(zc_addr_resolve("127.0.0.1", 0, a, 1), -EINVAL);
	cr_assert_eq(zc_addr_resolve("127.0.0.1:", 0, a, 1), -EINVAL);
	cr_assert_eq(zc_addr_resolve("::1:80", 0, a, 1), -EINVAL);
	cr_assert_eq(zc_addr_resolve("[::1]80", 0, a, 1), -EINVAL);
	cr_assert_eq(zc_addr_resolve("[::1:80", 0, a, 1), -EINVAL);
	cr_assert_eq(zc_addr_resolve("[127.0.0.1]:80", 0, a, 1), -EAFNOSUPPORT);
	cr_assert_eq(zc_addr_resolve(":80", 0, a, 1), -EINVAL);
	cr_assert_eq(zc_addr_resolve("unix:", 0, a, 1), -EINVAL);
	cr_assert_eq(zc_addr_resolve("unix:@", 0, a, 1), -EINVAL);
	cr_assert_eq(zc_addr_resolve(longp, 0, a, 1), -ENAMETOOLONG);
	cr_assert_eq(zc_addr_resolve("127.0.0.1:1", 0, a, 0), -EINVAL);
	cr_assert_eq(zc_addr_resolve("127.0.0.1:1", 1u << 5, a, 1), -EINVAL);
	cr_assert_eq(zc_addr_resolve(NULL, 0, a, 1), -EINVAL);
}

Test(addr, format_errors)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr sa = { .sa_family = AF_APPLETALK };
	char small[4];

	cr_assert_eq(zc_addr_format((struct sockaddr *)&in, sizeof(in), small,
				    sizeof(small)), -ENOSPC);
	cr_assert_eq(zc_addr_format((struct sockaddr *)&in, 4, small,
				    sizeof(small)), -EINVAL);
	cr_assert_eq(zc_addr_format(&sa, sizeof(sa), small, sizeof(small)),
		     -EAFNOSUPPORT);
}

/* "localhost" from /etc/hosts (no DNS): every candidate is a loopback
 * address with the port, and while both families have candidates left
 * they alternate (Happy Eyeballs). */
Test(addr, localhost_candidates_are_loopback)
{
	int n = zc_addr_resolve("localhost:9", 0, a, ZC_ADDR_MAX);
	int n4 = 0, n6 = 0, pairs;

	cr_assert_gt(n, 0);
	for (int i = 0; i < n; i++) {
		if (a[i].ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&a[i].ss;

			cr_assert_eq(ntohl(in->sin_addr.s_addr) >> 24, 127);
			cr_assert_eq(ntohs(in->sin_port), 9);
			n4++;
		} else {
			struct sockaddr_in6 *in6 =
				(struct sockaddr_in6 *)&a[i].ss;

			cr_assert_eq(a[i].ss.ss_family, AF_INET6);
			cr_assert(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
			cr_assert_eq(ntohs(in6->sin6_port), 9);
			n6++;
		}
	}
	pairs = n4 < n6 ? n4 : n6;
	for (int i = 1; i < 2 * pairs; i++)
		cr_assert_neq(a[i].ss.ss_family, a[i - 1].ss.ss_family);
}

/* ---- on a reactor ------------------------------------------------------ */

static int resolve_name(void *arg)
{
	return zc_addr_resolve(arg, 0, a, ZC_ADDR_MAX);
}

static void on_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
}

struct lst {
	struct zc_addr addr;
	unsigned flags;
	struct zc_listener *l;
};

static int do_listen(void *arg)
{
	struct lst *x = arg;

	return zc_listen(zc_reactor_current(), (struct sockaddr *)&x->addr.ss,
			 x->addr.len, x->flags, on_accept, NULL, &x->l);
}

static int do_close(void *arg)
{
	zc_listener_close(((struct lst *)arg)->l);
	return 0;
}

static int do_connect_bad(void *arg)
{
	struct sockaddr sa = { .sa_family = AF_APPLETALK };

	return zc_connect(zc_reactor_current(), &sa, sizeof(sa), 0, NULL,
			  NULL, NULL);
}

Test(addr, on_reactor)
{
	struct zc_reactor_config rc = { 0 };
	struct zc_reactor *r;
	struct lst x = { .flags = 0 }, y = { .flags = 0 };
	char path[64];

	cr_assert_eq(zc_reactor_spawn(&rc, &r), 0);
	/* A name may block in DNS: refused on a reactor thread; numbers
	 * never block and are fine there. */
	cr_assert_eq(zc_reactor_call(r, resolve_name, "localhost:80"),
		     -EDEADLK);
	cr_assert_eq(zc_reactor_call(r, resolve_name, "127.0.0.1:80"), 1);

	/* A Unix listener creates its file and removes it at close; a
	 * second bind of the path fails; REUSEPORT is refused. */
	snprintf(path, sizeof(path), "unix:/tmp/zc-test-addr-%d.sock",
		 (int)getpid());
	unlink(path + 5);
	cr_assert_eq(zc_addr_resolve(path, 0, &x.addr, 1), 1);
	cr_assert_eq(zc_reactor_call(r, do_listen, &x), 0);
	cr_assert_eq(access(path + 5, F_OK), 0);
	cr_assert_eq(zc_listener_port(x.l), 0);
	y.addr = x.addr;
	cr_assert_eq(zc_reactor_call(r, do_listen, &y), -EADDRINUSE);
	y.flags = ZC_LISTEN_REUSEPORT;
	cr_assert_eq(zc_reactor_call(r, do_listen, &y), -EINVAL);
	cr_assert_eq(zc_reactor_call(r, do_close, &x), 0);
	cr_assert_eq(zc_reactor_call(r, resolve_name, "127.0.0.1:80"), 1);
	cr_assert_neq(access(path + 5, F_OK), 0, "socket file left behind");

	/* Without REUSEPORT a TCP port in use cannot be bound again. */
	cr_assert_eq(zc_addr_resolve("127.0.0.1:0", 0, &x.addr, 1), 1);
	x.flags = 0;
	cr_assert_eq(zc_reactor_call(r, do_listen, &x), 0);
	y = x;
	((struct sockaddr_in *)&y.addr.ss)->sin_port =
		htons(zc_listener_port(x.l));
	cr_assert_eq(zc_reactor_call(r, do_listen, &y), -EADDRINUSE);
	cr_assert_eq(zc_reactor_call(r, do_close, &x), 0);

	cr_assert_eq(zc_reactor_call(r, do_connect_bad, NULL), -EAFNOSUPPORT);
	cr_assert_eq(zc_reactor_destroy(r), 0);
}
