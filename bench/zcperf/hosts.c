/* SPDX-License-Identifier: MIT */
/*
 * hosts.c - `-H a,b,c`: the servers of a multi-server run.  Each item is
 * host, host:port, [v6] or [v6]:port, where the port is that server's
 * control port (-p when left out).  A bare IPv6 address (more than one
 * colon, no brackets) is a host without port.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"

static int bad_item(const char *item, const char *why)
{
	fprintf(stderr, "zcperf: -H: '%s': %s\n", item, why);
	return -EINVAL;
}

/* One item of the list into slot @i of @o. */
static int parse_item(struct zp_opts *o, unsigned i, const char *item)
{
	const char *host = item, *port = NULL, *colon;
	size_t hlen = strlen(item);
	char *end;
	long p;

	if (item[0] == '[') {
		const char *close = strchr(item, ']');

		if (!close || (close[1] && close[1] != ':'))
			return bad_item(item, "[v6] or [v6]:port");
		host = item + 1;
		hlen = (size_t)(close - host);
		if (close[1])
			port = close + 2;
	} else if ((colon = strchr(item, ':')) && !strchr(colon + 1, ':')) {
		hlen = (size_t)(colon - item);
		port = colon + 1;
	}
	if (!hlen || hlen >= sizeof(o->hosts[i]))
		return bad_item(item, "empty or too long host");
	memcpy(o->hosts[i], host, hlen);
	o->hosts[i][hlen] = 0;
	o->host_ports[i] = o->port;
	if (port) {
		p = strtol(port, &end, 10);
		if (!*port || *end || p < 1 || p > 65535)
			return bad_item(item, "a port is 1 to 65535");
		o->host_ports[i] = (uint16_t)p;
	}
	return 0;
}

int zp_hosts_parse(struct zp_opts *o, const char *list)
{
	char item[96];
	const char *p = list;

	o->nhosts = 0;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (o->nhosts == ZP_HOSTS_MAX)
			return bad_item(list, "at most 16 servers");
		if (!n || n >= sizeof(item))
			return bad_item(list, "an empty or too long item");
		memcpy(item, p, n);
		item[n] = 0;
		if (parse_item(o, o->nhosts, item))
			return -EINVAL;
		o->nhosts++;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}
