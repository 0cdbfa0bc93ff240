/* SPDX-License-Identifier: MIT */
/*
 * bench/peers/cc_preload.c - LD_PRELOAD shim: every TCP socket the peer
 * makes gets the congestion control named by $ZC_PEER_CC (TCP_CONGESTION),
 * so that a peer without such an option (ZeroMQ, Cap'n Proto) runs with
 * the congestion control zcperf is given with --cc, without changing the
 * machine's default for everybody else.  Accepted sockets inherit the
 * listener's.  Setting a congestion control the kernel does not allow
 * for the user (net.ipv4.tcp_allowed_congestion_control) fails quietly:
 * check with `ss -ti` while it runs.
 *
 *   ZC_PEER_CC=cubic LD_PRELOAD=build-peers/bench/peers/libzc_cc_preload.so \
 *       build-peers/bench/peers/zmq_echo -s -p 7411
 */
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int socket(int domain, int type, int protocol)
{
	static int (*real)(int, int, int);
	const char *cc = getenv("ZC_PEER_CC");
	int fd;

	if (!real)
		real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
	if (!real)
		return -1;
	fd = real(domain, type, protocol);
	if (fd >= 0 && cc && *cc && (domain == AF_INET || domain == AF_INET6) &&
	    (type & 0xf) == SOCK_STREAM &&
	    (protocol == 0 || protocol == IPPROTO_TCP))
		(void)setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc,
				 (socklen_t)strlen(cc));
	return fd;
}
