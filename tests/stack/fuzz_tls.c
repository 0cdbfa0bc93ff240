/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/fuzz_tls.c - libFuzzer target for the TLS record path of
 * the stack (stack/tls.c, tls_bio.c): arbitrary bytes after a completed
 * handshake.
 *
 * Once per process: a spawned reactor with a TLS echo listener, and a
 * throwaway certificate made with the openssl command.  Per input: a
 * blocking OpenSSL client connects and completes the handshake; then the
 * first input byte picks how the rest reaches the server: odd, as raw
 * bytes on the socket (garbage where records are expected); even, inside
 * valid records (decrypt, deliver, echo back).  The client then shuts
 * down its side and reads until the server closes.  Properties beyond
 * "no crash, no sanitizer report": the server closes every connection
 * (none leaks: conns_open back to 0) and keeps accepting.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <zcrpc/stack.h>
#include <zcrpc/tls.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct zc_reactor *r;
static struct zc_listener *lis;
static struct zc_tls_ctx *sctx;
static SSL_CTX *cctx;
static char dir[64];

static void check(int cond)
{
	if (!cond)
		abort();
}

static int listen_fn(void *arg)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ret = zc_echo_listen(r, (struct sockaddr *)&a, sizeof(a), 0, &lis);

	return ret ? ret : zc_listener_set_tls(lis, sctx);
}

static void teardown(void)
{
	char cmd[96];

	check(zc_reactor_destroy(r) == 0);
	zc_tls_ctx_put(sctx);
	SSL_CTX_free(cctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	check(system(cmd) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char cmd[512], cert[96], key[96];
	struct zc_reactor_config rc = { .rxbuf_size = 16384 };

	strcpy(dir, "/tmp/zc_fuzz_tls_XXXXXX");
	check(mkdtemp(dir) != NULL);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		 "-nodes -keyout %s -out %s -days 1 -subj /CN=localhost "
		 ">/dev/null 2>&1", key, cert);
	check(system(cmd) == 0);
	check(zc_tls_ctx_new(&(struct zc_tls_config){
		.role = ZC_TLS_SERVER, .cert_file = cert, .key_file = key,
		.handshake_timeout_ms = 2000 }, &sctx) == 0);
	check(zc_reactor_spawn(&rc, &r) == 0);
	check(zc_reactor_call(r, listen_fn, NULL) == 0);
	cctx = SSL_CTX_new(TLS_client_method());
	check(cctx != NULL);
	SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
	atexit(teardown);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(zc_listener_port(lis)) };
	struct timeval tv = { .tv_sec = 5 };
	struct zc_reactor_stats st;
	char buf[16384];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	SSL *ssl;

	check(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	check(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	ssl = SSL_new(cctx);
	check(ssl && SSL_set_fd(ssl, fd) == 1);
	check(SSL_connect(ssl) == 1);
	if (size && (data[0] & 1)) {
		/* Raw bytes where records are expected. */
		check(send(fd, data + 1, size - 1, MSG_NOSIGNAL) ==
		      (ssize_t)(size - 1));
	} else if (size > 1) {
		check(SSL_write(ssl, data + 1, (int)(size - 1)) > 0);
	}
	shutdown(fd, SHUT_WR);
	/* Until the server closes (echoed records, alerts, then EOF). */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	SSL_free(ssl);
	close(fd);
	/* The server lets go of every connection (bounded wait). */
	for (int i = 0; i < 500; i++) {
		zc_reactor_stats(r, &st);
		if (!st.conns_open)
			break;
		usleep(1000);
	}
	check(st.conns_open == 0);
	return 0;
}
