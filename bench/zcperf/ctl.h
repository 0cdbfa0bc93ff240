/* SPDX-License-Identifier: MIT */
/*
 * ctl.h - the control connection between zcperf client and server.
 *
 * Like netperf's control connection (netserver's port 12865), it is a
 * plain blocking TCP socket beside the data connections, carrying one
 * short text line per message, so a run can be followed with tcpdump or
 * driven by hand with nc.  One test at a time:
 *
 *   client                                server
 *   ZCPERF 1 test=TCP_RR seconds=10 ...   (configuration, see zp_ctl_cfg)
 *                                         READY port=P   | ERROR reason
 *   (opens the data connections to P)
 *   GO                                    (waits for every accept, takes
 *                                          its CPU snapshot, starts)
 *                                         STARTED
 *   ... the run ...
 *   STOP                                  (stops sending if it sends,
 *                                          waits for every data close)
 *                                         RESULT util=.. sent=.. ...
 *   next ZCPERF line, or close
 *
 * The data port is chosen by the server for each test (port 0), on the
 * address the client reached the control port on.
 */
#ifndef ZCPERF_CTL_H
#define ZCPERF_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "opts.h"
#include "result.h"

#define ZP_CTL_LINE_MAX 1024

struct zp_ctl {
	int fd;
	size_t have;
	char buf[ZP_CTL_LINE_MAX];
};

/* Listen for control connections on @addr (NULL: every address) @port.
 * Returns the fd or -errno. */
int zp_ctl_listen(const char *addr, uint16_t port);
/* Bound port of a listening fd, or 0. */
uint16_t zp_ctl_port(int fd);
/* Connect to @host:@port; on success *@peer is the address reached. */
int zp_ctl_connect(struct zp_ctl *c, const char *host, uint16_t port,
		   struct sockaddr_storage *peer, socklen_t *peerlen);
void zp_ctl_init(struct zp_ctl *c, int fd);
void zp_ctl_close(struct zp_ctl *c);

/* Send one line (no newline in @line).  0 or -errno. */
int zp_ctl_send(struct zp_ctl *c, const char *line);
/*
 * Read one line into @out (newline stripped), waiting up to @timeout_ms.
 * Returns its length, -ETIMEDOUT, -ECONNRESET at EOF, -EMSGSIZE for a
 * line over ZP_CTL_LINE_MAX, or another -errno.
 */
int zp_ctl_recv(struct zp_ctl *c, char *out, size_t len, int timeout_ms);

/* The configuration line and back.  @cpus: the server's CPUs or NULL. */
void zp_ctl_fmt_cfg(const struct zp_test_cfg *cfg, const cpu_set_t *cpus,
		    char *out, size_t len);
/* Returns 0, or -EINVAL with *@why set. */
int zp_ctl_parse_cfg(const char *line, struct zp_test_cfg *cfg,
		     cpu_set_t *cpus, bool *cpus_given, const char **why);

/* The RESULT line and back (errors: data connections that failed). */
void zp_ctl_fmt_side(const struct zp_side *s, unsigned errors, char *out,
		     size_t len);
int zp_ctl_parse_side(const char *line, struct zp_side *s, unsigned *errors);

/* Value of "key=" in a line of space-separated key=value words, copied to
 * @out; returns 0 or -ENOENT. */
int zp_ctl_get(const char *line, const char *key, char *out, size_t len);

/* The local address of @fd with port 0, v4-mapped IPv6 turned back into
 * IPv4, for the server's data listeners. */
int zp_ctl_local_addr(int fd, struct sockaddr_storage *ss, socklen_t *len);

#endif /* ZCPERF_CTL_H */
