/* SPDX-License-Identifier: MIT */
/*
 * ctl.c - control connection: sockets, lines, and the two messages that
 * carry data (the configuration and the server's RESULT).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zcrpc/zcrpc.h>

#include "ctl.h"

void zp_ctl_init(struct zp_ctl *c, int fd)
{
	c->fd = fd;
	c->have = 0;
}

void zp_ctl_close(struct zp_ctl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->have = 0;
}

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int listen_family(const char *addr, uint16_t port, int family)
{
	struct addrinfo hints = { 0 }, *res, *ai;
	char service[8];
	int fd, ret, one = 1, zero = 0;

	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(addr, service, &hints, &res))
		return -EADDRNOTAVAIL;
	ret = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
				   sizeof(zero));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 16)) {
			ret = fd;
			break;
		}
		ret = -errno;
		close(fd);
	}
	freeaddrinfo(res);
	return ret;
}

int zp_ctl_listen(const char *addr, uint16_t port)
{
	int fd;

	if (addr)
		return listen_family(addr, port, AF_UNSPEC);
	/* Dual-stack IPv6 takes IPv4 too; plain IPv4 where IPv6 is off. */
	fd = listen_family(NULL, port, AF_INET6);
	if (fd < 0)
		fd = listen_family(NULL, port, AF_INET);
	return fd;
}

uint16_t zp_ctl_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int zp_ctl_connect(struct zp_ctl *c, const char *host, uint16_t port,
		   struct sockaddr_storage *peer, socklen_t *peerlen)
{
	struct addrinfo hints = { 0 }, *res, *ai;
	char service[8];
	int fd, ret;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", port);
	ret = getaddrinfo(host, service, &hints, &res);
	if (ret) {
		fprintf(stderr, "zcperf: %s: %s\n", host, gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	ret = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		if (!connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			nodelay(fd);
			memcpy(peer, ai->ai_addr, ai->ai_addrlen);
			*peerlen = ai->ai_addrlen;
			zp_ctl_init(c, fd);
			ret = 0;
			break;
		}
		ret = -errno;
		close(fd);
	}
	freeaddrinfo(res);
	return ret;
}

int zp_ctl_send(struct zp_ctl *c, const char *line)
{
	char buf[ZP_CTL_LINE_MAX + 1];
	size_t len = strlen(line), off = 0;

	if (len >= ZP_CTL_LINE_MAX)
		return -EMSGSIZE;
	memcpy(buf, line, len);
	buf[len++] = '\n';
	while (off < len) {
		ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

int zp_ctl_recv(struct zp_ctl *c, char *out, size_t len, int timeout_ms)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->have);
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t n;
		int ret;

		if (nl) {
			size_t l = (size_t)(nl - c->buf), used = l + 1;

			if (l >= len)
				return -EMSGSIZE;
			memcpy(out, c->buf, l);
			out[l] = 0;
			if (l && out[l - 1] == '\r')
				out[--l] = 0;
			memmove(c->buf, c->buf + used, c->have - used);
			c->have -= used;
			return (int)l;
		}
		if (c->have == sizeof(c->buf))
			return -EMSGSIZE;
		ret = poll(&pfd, 1, timeout_ms);
		if (ret < 0) {
			if (errno == EINTR)
				return -EINTR;
			return -errno;
		}
		if (!ret)
			return -ETIMEDOUT;
		n = recv(c->fd, c->buf + c->have, sizeof(c->buf) - c->have, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!n)
			return -ECONNRESET;
		c->have += (size_t)n;
	}
}

int zp_ctl_get(const char *line, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key);
	const char *p = line;

	while ((p = strstr(p, key))) {
		if ((p == line || p[-1] == ' ') && p[klen] == '=') {
			const char *v = p + klen + 1;
			size_t n = strcspn(v, " ");

			if (n >= len)
				return -ENOENT;
			memcpy(out, v, n);
			out[n] = 0;
			return 0;
		}
		p += klen;
	}
	return -ENOENT;
}

void zp_ctl_fmt_cfg(const struct zp_test_cfg *cfg, const cpu_set_t *cpus,
		    char *out, size_t len)
{
	char cpulist[128] = "-";

	if (cpus)
		zp_format_cpulist(cpus, cpulist, sizeof(cpulist));
	snprintf(out, len,
		 "ZCPERF 1 test=%s seconds=%.3f msg=%u req=%u resp=%u conns=%u "
		 "depth=%u reactors=%u send=%s free=%s consumer=%d rxbuf=%u "
		 "rxring=%u sockbuf=%u poll=%u cc=%s cpus=%s rate=%.3f "
		 "arrival=%s stall=%u idle=%u tls=%u",
		 zp_test_name(cfg->test), cfg->seconds, cfg->msg_size,
		 cfg->req_size, cfg->resp_size, cfg->conns, cfg->depth,
		 cfg->reactors, zp_send_name(cfg->send),
		 zc_free_mode_name((enum zc_free_mode)cfg->free_mode),
		 cfg->consumer_cpu, cfg->rxbuf, cfg->rxring, cfg->sockbuf,
		 cfg->poll_us,
		 cfg->cc[0] ? cfg->cc : "-", cpulist, cfg->rate,
		 zp_arrival_name((enum zp_arrival)cfg->arrival), cfg->stall_ms,
		 cfg->idle, cfg->tls);
}

static int get_u32(const char *line, const char *key, uint32_t *out)
{
	char v[32], *end;
	unsigned long n;

	if (zp_ctl_get(line, key, v, sizeof(v)))
		return -ENOENT;
	n = strtoul(v, &end, 10);
	if (*end || end == v || n > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)n;
	return 0;
}

int zp_ctl_parse_cfg(const char *line, struct zp_test_cfg *cfg,
		     cpu_set_t *cpus, bool *cpus_given, const char **why)
{
	char v[128], *end;
	enum zc_free_mode fm;

	*why = "malformed configuration";
	if (strncmp(line, "ZCPERF 1 ", 9)) {
		*why = "not a zcperf 1 client";
		return -EINVAL;
	}
	zp_cfg_defaults(cfg);
	if (zp_ctl_get(line, "test", v, sizeof(v)) ||
	    zp_test_parse(v, &cfg->test))
		return -EINVAL;
	if (zp_ctl_get(line, "seconds", v, sizeof(v)))
		return -EINVAL;
	cfg->seconds = strtod(v, &end);
	if (*end)
		return -EINVAL;
	if (get_u32(line, "msg", &cfg->msg_size) ||
	    get_u32(line, "req", &cfg->req_size) ||
	    get_u32(line, "resp", &cfg->resp_size) ||
	    get_u32(line, "conns", &cfg->conns) ||
	    get_u32(line, "depth", &cfg->depth) ||
	    get_u32(line, "reactors", &cfg->reactors) ||
	    get_u32(line, "rxbuf", &cfg->rxbuf) ||
	    get_u32(line, "poll", &cfg->poll_us))
		return -EINVAL;
	/* Optional: clients before --rxring / --sockbuf did not send them. */
	if (get_u32(line, "rxring", &cfg->rxring) == -EINVAL ||
	    get_u32(line, "sockbuf", &cfg->sockbuf) == -EINVAL ||
	    get_u32(line, "stall", &cfg->stall_ms) == -EINVAL ||
	    get_u32(line, "idle", &cfg->idle) == -EINVAL)
		return -EINVAL;
	/* Optional too (clients before --tls): absent is off. */
	if (!zp_ctl_get(line, "tls", v, sizeof(v)))
		cfg->tls = !strcmp(v, "1");
	/* Optional too: before --rate there was only the closed loop. */
	if (!zp_ctl_get(line, "rate", v, sizeof(v))) {
		cfg->rate = strtod(v, &end);
		if (*end)
			return -EINVAL;
	}
	if (!zp_ctl_get(line, "arrival", v, sizeof(v))) {
		enum zp_arrival a;

		if (zp_arrival_parse(v, &a))
			return -EINVAL;
		cfg->arrival = (int)a;
	}
	if (zp_ctl_get(line, "send", v, sizeof(v)) ||
	    zp_send_parse(v, &cfg->send))
		return -EINVAL;
	if (zp_ctl_get(line, "free", v, sizeof(v)) ||
	    zc_free_mode_parse(v, &fm))
		return -EINVAL;
	cfg->free_mode = (int)fm;
	if (zp_ctl_get(line, "consumer", v, sizeof(v)))
		return -EINVAL;
	cfg->consumer_cpu = (int)strtol(v, &end, 10);
	if (*end || cfg->consumer_cpu < -1)
		return -EINVAL;
	if (zp_ctl_get(line, "cc", v, sizeof(v)) || strlen(v) >= sizeof(cfg->cc))
		return -EINVAL;
	if (strcmp(v, "-"))
		strcpy(cfg->cc, v);
	*cpus_given = false;
	if (!zp_ctl_get(line, "cpus", v, sizeof(v)) && strcmp(v, "-")) {
		if (zp_parse_cpulist(v, cpus))
			return -EINVAL;
		*cpus_given = true;
	}
	*why = zp_cfg_check(cfg);
	return *why ? -EINVAL : 0;
}

/* Append "name:seconds,..." ("-" for none): the side's thread clocks. */
static void fmt_threads(const struct zp_thread_use *t, char *out, size_t len)
{
	size_t used = strlen(out);
	unsigned i;

	if (!t->n && used < len)
		snprintf(out + used, len - used, "-");
	for (i = 0; i < t->n && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s:%.6f",
					 i ? "," : "", t->name[i],
					 t->cpu_s[i]);
}

static int parse_threads(const char *v, struct zp_thread_use *t)
{
	const char *p = v;

	memset(t, 0, sizeof(*t));
	if (!strcmp(v, "-"))
		return 0;
	while (*p) {
		const char *colon = strchr(p, ':');
		size_t nl = colon ? (size_t)(colon - p) : 0;
		char *end;

		if (!colon || !nl || nl >= ZP_TCPU_NAME || t->n == ZP_TCPU_MAX)
			return -EINVAL;
		memcpy(t->name[t->n], p, nl);
		t->name[t->n][nl] = 0;
		t->cpu_s[t->n] = strtod(colon + 1, &end);
		if (end == colon + 1 || (*end && *end != ','))
			return -EINVAL;
		t->total_s += t->cpu_s[t->n++];
		p = *end ? end + 1 : end;
	}
	return 0;
}

void zp_ctl_fmt_side(const struct zp_side *s, unsigned errors, char *out,
		     size_t len)
{
	const struct zp_counters *k = &s->ctr;

	snprintf(out, len,
		 "RESULT util=%.4f busy_s=%.6f proc_s=%.6f ncpus=%u cpus=%s "
		 "sent=%llu recv=%llu trans=%llu zc_sends=%llu "
		 "notifications=%llu copied_notifications=%llu "
		 "deferred_frees=%llu drains=%llu kicks=%llu rx_enobufs=%llu "
		 "tcp_busy=%llu tcp_rwnd=%llu tcp_sndbuf=%llu tcp_retrans=%llu "
		 "rss0=%llu rss_w=%llu rss1=%llu errors=%u ktls=%llu "
		 "rpc_span=%llu rpc_shared=%llu rss_l=%llu acc_s=%.6f "
		 "tlsrec_z=%llu tlsrec_o=%llu large=%llu ffiles=%llu "
		 "ffall=%llu tcpu=",
		 s->cpu.util, s->cpu.busy_s, s->cpu.proc_s, s->cpu.ncpus,
		 s->cpus[0] ? s->cpus : "-",
		 (unsigned long long)s->bytes_sent,
		 (unsigned long long)s->bytes_received,
		 (unsigned long long)s->transactions,
		 (unsigned long long)k->zc_sends,
		 (unsigned long long)k->notifications,
		 (unsigned long long)k->copied_notifications,
		 (unsigned long long)k->deferred_frees,
		 (unsigned long long)k->drains, (unsigned long long)k->kicks,
		 (unsigned long long)k->rx_enobufs,
		 (unsigned long long)k->tcp_busy_us,
		 (unsigned long long)k->tcp_rwnd_limited_us,
		 (unsigned long long)k->tcp_sndbuf_limited_us,
		 (unsigned long long)k->tcp_retrans,
		 (unsigned long long)s->rss_start_kb,
		 (unsigned long long)s->rss_warm_kb,
		 (unsigned long long)s->rss_end_kb, errors,
		 (unsigned long long)k->ktls_conns,
		 (unsigned long long)k->rpc_spanning,
		 (unsigned long long)k->rpc_shared_buf,
		 (unsigned long long)s->rss_listen_kb, s->accept_s,
		 (unsigned long long)k->tlsrec_zcrpc,
		 (unsigned long long)k->tlsrec_openssl,
		 (unsigned long long)k->large_copies,
		 (unsigned long long)k->fixed_files,
		 (unsigned long long)k->fixed_fallbacks);
	fmt_threads(&s->threads, out, len);
}

static int get_u64(const char *line, const char *key, uint64_t *out)
{
	char v[32], *end;

	if (zp_ctl_get(line, key, v, sizeof(v)))
		return -ENOENT;
	*out = strtoull(v, &end, 10);
	return *end || end == v ? -EINVAL : 0;
}

static int get_double(const char *line, const char *key, double *out)
{
	char v[48], *end;

	if (zp_ctl_get(line, key, v, sizeof(v)))
		return -ENOENT;
	*out = strtod(v, &end);
	return *end || end == v ? -EINVAL : 0;
}

int zp_ctl_parse_side(const char *line, struct zp_side *s, unsigned *errors)
{
	struct zp_counters *k = &s->ctr;
	uint32_t ncpus, err;

	if (strncmp(line, "RESULT ", 7))
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	if (get_double(line, "util", &s->cpu.util) ||
	    get_double(line, "busy_s", &s->cpu.busy_s) ||
	    get_double(line, "proc_s", &s->cpu.proc_s) ||
	    get_u32(line, "ncpus", &ncpus) ||
	    zp_ctl_get(line, "cpus", s->cpus, sizeof(s->cpus)) ||
	    get_u64(line, "sent", &s->bytes_sent) ||
	    get_u64(line, "recv", &s->bytes_received) ||
	    get_u64(line, "trans", &s->transactions) ||
	    get_u64(line, "zc_sends", &k->zc_sends) ||
	    get_u64(line, "notifications", &k->notifications) ||
	    get_u64(line, "copied_notifications", &k->copied_notifications) ||
	    get_u64(line, "deferred_frees", &k->deferred_frees) ||
	    get_u64(line, "drains", &k->drains) ||
	    get_u64(line, "kicks", &k->kicks) ||
	    get_u64(line, "rx_enobufs", &k->rx_enobufs) ||
	    get_u64(line, "tcp_busy", &k->tcp_busy_us) ||
	    get_u64(line, "tcp_rwnd", &k->tcp_rwnd_limited_us) ||
	    get_u64(line, "tcp_sndbuf", &k->tcp_sndbuf_limited_us) ||
	    get_u64(line, "tcp_retrans", &k->tcp_retrans) ||
	    get_u64(line, "rss0", &s->rss_start_kb) ||
	    get_u64(line, "rss_w", &s->rss_warm_kb) ||
	    get_u64(line, "rss1", &s->rss_end_kb) ||
	    get_u32(line, "errors", &err))
		return -EINVAL;
	/* Optional: servers before --tls did not send it. */
	if (get_u64(line, "ktls", &k->ktls_conns) == -EINVAL)
		return -EINVAL;
	s->cpu.ncpus = ncpus;
	*errors = err;
	/* Optional: servers before these counters did not send them. */
	if (get_u64(line, "rpc_span", &k->rpc_spanning) == -EINVAL ||
	    get_u64(line, "rpc_shared", &k->rpc_shared_buf) == -EINVAL ||
	    get_u64(line, "rss_l", &s->rss_listen_kb) == -EINVAL ||
	    get_double(line, "acc_s", &s->accept_s) == -EINVAL ||
	    get_u64(line, "tlsrec_z", &k->tlsrec_zcrpc) == -EINVAL ||
	    get_u64(line, "tlsrec_o", &k->tlsrec_openssl) == -EINVAL ||
	    get_u64(line, "large", &k->large_copies) == -EINVAL ||
	    get_u64(line, "ffiles", &k->fixed_files) == -EINVAL ||
	    get_u64(line, "ffall", &k->fixed_fallbacks) == -EINVAL)
		return -EINVAL;
	{
		char v[ZP_CTL_LINE_MAX];

		if (!zp_ctl_get(line, "tcpu", v, sizeof(v)) &&
		    parse_threads(v, &s->threads))
			return -EINVAL;
	}
	return 0;
}

int zp_ctl_local_addr(int fd, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	*len = sizeof(*ss);
	if (getsockname(fd, (struct sockaddr *)ss, len))
		return -errno;
	if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		struct sockaddr_in in4 = { .sin_family = AF_INET };

		memcpy(&in4.sin_addr, &in6->sin6_addr.s6_addr[12], 4);
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, &in4, sizeof(in4));
		*len = sizeof(in4);
		return 0;
	}
	if (ss->ss_family == AF_INET6)
		in6->sin6_port = 0;
	else
		((struct sockaddr_in *)ss)->sin_port = 0;
	return 0;
}
