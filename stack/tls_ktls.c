/* SPDX-License-Identifier: MIT */
/*
 * stack/tls_ktls.c - does the kernel offer kTLS?  Probed once per process
 * on a loopback pair (TCP_ULP needs an established socket).  When it says
 * yes, a connection could hand its keys over after the handshake
 * (TLS_TX/TLS_RX) and send plaintext zero-copy while the kernel encrypts;
 * the session layout (tls.c) keeps that step in one place, after
 * established().
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zcrpc/tls.h>

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

static bool ktls;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void probe(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l >= 0 && c >= 0 && !bind(l, (struct sockaddr *)&a, sizeof(a)) &&
	    !listen(l, 1) && !getsockname(l, (struct sockaddr *)&a, &al) &&
	    !connect(c, (struct sockaddr *)&a, sizeof(a)))
		ktls = !setsockopt(c, IPPROTO_TCP, TCP_ULP, "tls", 3);
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
}

bool zc_tls_ktls_available(void)
{
	pthread_once(&once, probe);
	return ktls;
}
