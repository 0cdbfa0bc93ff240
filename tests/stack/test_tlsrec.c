/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_tlsrec.c - the TLS 1.3 record layer of the stack
 * (stack/tls_rec.c, tls_keys.c) against OpenSSL's own client, a peer
 * whose record code we did not write: records opened and sealed both
 * ways byte for byte (with buffers of 4 KiB, so records span ring views
 * and pool buffers); KeyUpdate of both kinds; padding up to the limit;
 * a corrupted or oversized record closing that connection only, with a
 * counter; close_notify both ways; which record layer each session
 * took (TLS 1.3: ours, TLS 1.2: OpenSSL's), counted; every TLS 1.3
 * suite; and our client side against `openssl s_server`, which sends
 * NewSessionTickets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <zcrpc/stack.h>
#include <zcrpc/tls.h>

#include "tls_certs.h"

static struct tc T;
/* The server's key_update_records (0: the default). */
static uint64_t ku_records;
static struct zc_reactor *r;
static struct zc_listener *lis;
static struct zc_tls_ctx *sctx;
static SSL_CTX *cctx;

static int listen_fn(void *arg)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ret = zc_echo_listen(r, (struct sockaddr *)&a, sizeof(a), 0, &lis);

	(void)arg;
	return ret ? ret : zc_listener_set_tls(lis, sctx);
}

/* A TLS echo server on a spawned reactor whose buffers are the smallest
 * the pool allows (a 16 KiB record spans five of them). */
static void srv_up(void)
{
	struct zc_reactor_config rc = { .rxbuf_size = ZC_BUF_SIZE_MIN };

	cr_assert_eq(tc_make(&T), 0, "making certificates");
	cr_assert_eq(tc_ctx(&T, (struct zc_tls_config){
				.role = ZC_TLS_SERVER, .allow_tls12 = true,
				.handshake_timeout_ms = 5000,
				.key_update_records = ku_records },
			    "server", "ca", &sctx), 0);
	cr_assert_eq(zc_reactor_spawn(&rc, &r), 0);
	cr_assert_eq(zc_reactor_call(r, listen_fn, NULL), 0);
	cctx = SSL_CTX_new(TLS_client_method());
	cr_assert_not_null(cctx);
}

static void srv_down(void)
{
	cr_assert_eq(zc_reactor_destroy(r), 0);
	zc_tls_ctx_put(sctx);
	SSL_CTX_free(cctx);
	tc_drop(&T);
}

/* The server's counters once every connection is gone (bounded wait). */
static void srv_idle_stats(struct zc_reactor_stats *st)
{
	for (int i = 0; i < 500; i++) {
		zc_reactor_stats(r, st);
		if (!st->conns_open)
			return;
		usleep(10000);
	}
	cr_assert_eq(st->conns_open, 0, "a connection stayed open");
}

/* A blocking client (reads time out after 10 s), handshake done. */
static SSL *cli_connect(int max_version, int *fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(zc_listener_port(lis)) };
	struct timeval tv = { .tv_sec = 10 };
	SSL *ssl;

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(*fd, 0);
	setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ssl = SSL_new(cctx);
	cr_assert_not_null(ssl);
	cr_assert_eq(SSL_set_max_proto_version(ssl, max_version), 1);
	cr_assert_eq(SSL_set_fd(ssl, *fd), 1);
	cr_assert_eq(SSL_connect(ssl), 1, "handshake");
	return ssl;
}

static void cli_close(SSL *ssl, int fd)
{
	SSL_free(ssl);
	close(fd);
}

static void fill(unsigned char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)((i * 2654435761u + seed) >> 7);
}

/* Send @len bytes in writes of @chunk and read them back, identical. */
static void echo(SSL *ssl, size_t len, size_t chunk, unsigned seed)
{
	unsigned char *out = malloc(len), *in = malloc(len);
	size_t w = 0, got = 0;

	cr_assert(out && in);
	fill(out, len, seed);
	while (got < len) {
		int n;

		/* Write ahead of reading by at most 64 KiB: the echo's
		 * socket buffers stay far from full. */
		while (w < len && w - got < 65536) {
			size_t m = len - w < chunk ? len - w : chunk;

			n = SSL_write(ssl, out + w, (int)m);
			cr_assert_eq(n, (int)m, "SSL_write");
			w += m;
		}
		n = SSL_read(ssl, in + got, (int)(len - got));
		cr_assert_gt(n, 0, "SSL_read: %d", SSL_get_error(ssl, n));
		got += (size_t)n;
	}
	cr_assert_eq(memcmp(in, out, len), 0, "echo differs");
	free(out);
	free(in);
}

/* Until the server closes: 0 at EOF (nothing else sent), else what
 * SSL_read ended with. */
static int read_to_end(SSL *ssl)
{
	unsigned char buf[4096];
	int n, i;

	for (i = 0; i < 10000; i++) {
		n = SSL_read(ssl, buf, sizeof(buf));
		if (n <= 0)
			return SSL_get_error(ssl, n);
	}
	return -1;
}

TestSuite(stack_tlsrec, .init = srv_up, .fini = srv_down, .timeout = 60);

/* TLS 1.3 hands the records to us; TLS 1.2 keeps OpenSSL's; both serve. */
Test(stack_tlsrec, each_session_counted_by_record_layer)
{
	struct zc_reactor_stats st;
	int fd;
	SSL *ssl = cli_connect(TLS1_3_VERSION, &fd);

	cr_assert_str_eq(SSL_get_version(ssl), "TLSv1.3");
	echo(ssl, 200000, 16384, 1);
	cli_close(ssl, fd);
	ssl = cli_connect(TLS1_2_VERSION, &fd);
	cr_assert_str_eq(SSL_get_version(ssl), "TLSv1.2");
	echo(ssl, 200000, 16384, 2);
	cli_close(ssl, fd);
	srv_idle_stats(&st);
	cr_assert_eq(st.tls_rec_zcrpc, 1);
	cr_assert_eq(st.tls_rec_openssl, 1);
	cr_assert_eq(st.tls_bad_records, 0);
}

/* Full 2^14-byte records, odd sizes, and one-byte records, both ways:
 * every record of the client opened by us, every one of ours by it. */
Test(stack_tlsrec, records_of_every_size)
{
	size_t chunks[] = { 16384, 16383, 4097, 1, 700 };
	int fd;
	SSL *ssl = cli_connect(TLS1_3_VERSION, &fd);

	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
		echo(ssl, chunks[i] == 1 ? 3000 : 1u << 20, chunks[i],
		     (unsigned)i);
	cli_close(ssl, fd);
}

static size_t pad_to_limit(SSL *ssl, int type, size_t len, void *arg)
{
	(void)ssl;
	(void)type;
	(void)arg;
	/* OpenSSL caps it so that the record stays within 2^14 + 1. */
	return 16384 - len;
}

/* Records padded up to the limit (RFC 8446 5.4): the content type is
 * found past 16 KiB of zeros spanning buffers, and stripped. */
Test(stack_tlsrec, padding_up_to_the_limit)
{
	int fd;
	SSL *ssl = cli_connect(TLS1_3_VERSION, &fd);
	unsigned long before;

	SSL_set_record_padding_callback(ssl, pad_to_limit);
	before = BIO_number_written(SSL_get_wbio(ssl));
	echo(ssl, 300, 1, 3);
	cr_assert_geq(BIO_number_written(SSL_get_wbio(ssl)) - before,
		      300ul * 16384, "the records were not padded");
	echo(ssl, 100000, 5000, 4);
	cli_close(ssl, fd);
}

/* Counts the KeyUpdates the client receives. */
static void msg_cb(int write_p, int version, int content_type,
		   const void *buf, size_t len, SSL *ssl, void *arg)
{
	(void)version;
	(void)ssl;
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len &&
	    ((const unsigned char *)buf)[0] == SSL3_MT_KEY_UPDATE)
		(*(unsigned *)arg)++;
}

/* KeyUpdate from the peer: our read key moves on; when asked, we answer
 * with our own KeyUpdate and move our write key (RFC 8446 4.6.3). */
Test(stack_tlsrec, key_update_both_kinds)
{
	struct zc_reactor_stats st;
	unsigned got = 0;
	int fd;
	SSL *ssl = cli_connect(TLS1_3_VERSION, &fd);

	SSL_set_msg_callback(ssl, msg_cb);
	SSL_set_msg_callback_arg(ssl, &got);
	echo(ssl, 50000, 16384, 5);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED), 1);
		echo(ssl, 50000, 16384, 6 + (unsigned)i);
	}
	cr_assert_eq(got, 3, "KeyUpdates answered: %u", got);
	cr_assert_eq(SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
	echo(ssl, 50000, 16384, 9);
	cr_assert_eq(got, 3, "a KeyUpdate not asked for was answered");
	cli_close(ssl, fd);
	srv_idle_stats(&st);
	cr_assert_eq(st.tls_key_updates, 4);
	cr_assert_eq(st.tls_bad_records, 0);
}

/* close_notify both ways: the client's ends the stream for the server
 * (an orderly EOF, no error), and the server's answer is a close_notify
 * of its own, which OpenSSL reads as SSL_ERROR_ZERO_RETURN. */
Test(stack_tlsrec, close_notify_both_ways)
{
	struct zc_reactor_stats st;
	int fd;
	SSL *ssl = cli_connect(TLS1_3_VERSION, &fd);

	echo(ssl, 1000, 1000, 10);
	cr_assert_eq(SSL_shutdown(ssl), 0, "our close_notify sent");
	cr_assert_eq(read_to_end(ssl), SSL_ERROR_ZERO_RETURN);
	cli_close(ssl, fd);
	srv_idle_stats(&st);
	cr_assert_eq(st.conn_errors, 0);
	cr_assert_eq(st.tls_bad_records, 0);
}

/*
 * @ssl seals @len bytes into one record in memory instead of on its
 * socket; @edit changes it; the result goes out raw.  The client's
 * session is of no further use.
 */
static void send_forged(SSL *ssl, int fd, size_t len,
			void (*edit)(unsigned char *rec, long n))
{
	BIO *mem = BIO_new(BIO_s_mem());
	unsigned char data[100] = { 0 }, *rec;
	long n;

	cr_assert_not_null(mem);
	SSL_set0_wbio(ssl, mem); /* the socket BIO stays as rbio */
	cr_assert_eq(SSL_write(ssl, data, (int)len), (int)len);
	n = BIO_get_mem_data(mem, (char **)&rec);
	cr_assert_eq(n, 5 + (long)len + 1 + 16, "one record");
	edit(rec, n);
	cr_assert_eq(send(fd, rec, (size_t)n, MSG_NOSIGNAL), n);
}

static void flip_ciphertext(unsigned char *rec, long n)
{
	(void)n;
	rec[5 + 3] ^= 0x40;
}

static void flip_tag(unsigned char *rec, long n)
{
	rec[n - 1] ^= 1;
}

/* The server's fatal alert, then EOF: the raw bytes after our record. */
static void expect_alert(int fd)
{
	unsigned char buf[256];
	ssize_t n = 0, m;

	while (n < (ssize_t)sizeof(buf) &&
	       (m = read(fd, buf + n, sizeof(buf) - (size_t)n)) > 0)
		n += m;
	/* An encrypted record (type 23) was sent: we cannot read it
	 * without the keys, but it is there, and then the stream ends. */
	cr_assert_geq(n, 5 + 2 + 1 + 16, "no alert before EOF");
	cr_assert_eq(buf[0], 23);
}

static void corrupt_one(void (*edit)(unsigned char *rec, long n))
{
	struct zc_reactor_stats st;
	int fd, fd2;
	SSL *bad = cli_connect(TLS1_3_VERSION, &fd);
	SSL *good = cli_connect(TLS1_3_VERSION, &fd2);

	echo(bad, 1000, 1000, 11);
	echo(good, 1000, 1000, 12);
	send_forged(bad, fd, 100, edit);
	expect_alert(fd);
	/* The other connection is still served. */
	echo(good, 300000, 16384, 13);
	cli_close(bad, fd);
	cli_close(good, fd2);
	srv_idle_stats(&st);
	cr_assert_eq(st.tls_bad_records, 1);
	cr_assert_eq(st.tls_rec_zcrpc, 2);
}

/* A ciphertext byte flipped on the wire: the tag fails, that connection
 * closes (bad_record_mac, a counter, a log line), the other goes on. */
Test(stack_tlsrec, corrupted_ciphertext_closes_that_connection_only)
{
	corrupt_one(flip_ciphertext);
}

Test(stack_tlsrec, corrupted_tag_closes_that_connection_only)
{
	corrupt_one(flip_tag);
}

/* Raw record headers at and past the RFC 8446 limits, after a good
 * handshake: 2^14 + 256 bytes is a length we accept (the garbage then
 * fails its tag), 2^14 + 257 is refused from the header alone; so is a
 * record too short to hold a tag, and a change_cipher_spec. */
static void raw_record(unsigned char type, size_t len)
{
	struct zc_reactor_stats st;
	unsigned char *rec = calloc(1, 5 + len);
	int fd;
	SSL *ssl = cli_connect(TLS1_3_VERSION, &fd);

	cr_assert_not_null(rec);
	echo(ssl, 1000, 1000, 14);
	rec[0] = type;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (unsigned char)(len >> 8);
	rec[4] = (unsigned char)len;
	cr_assert_eq(send(fd, rec, 5 + len, MSG_NOSIGNAL), (ssize_t)(5 + len));
	expect_alert(fd);
	cli_close(ssl, fd);
	free(rec);
	srv_idle_stats(&st);
	cr_assert_eq(st.tls_bad_records, 1);
	cr_assert_eq(st.conns_open, 0);
}

Test(stack_tlsrec, record_of_largest_length_opened_then_refused_by_tag)
{
	raw_record(23, 16384 + 256);
}

Test(stack_tlsrec, record_over_the_length_limit_refused)
{
	raw_record(23, 16384 + 257);
}

Test(stack_tlsrec, record_too_short_for_a_tag_refused)
{
	raw_record(23, 16);
}

Test(stack_tlsrec, change_cipher_spec_after_handshake_refused)
{
	raw_record(20, 1);
}

/* Each TLS 1.3 suite OpenSSL offers, on our server side: records both
 * ways and a KeyUpdate (SHA-384 secrets for AES-256-GCM). */
Test(stack_tlsrec, every_suite_as_server)
{
	static const char *const suites[] = { "TLS_AES_128_GCM_SHA256",
					      "TLS_AES_256_GCM_SHA384",
					      "TLS_CHACHA20_POLY1305_SHA256" };
	struct zc_reactor_stats st;

	for (unsigned i = 0; i < 3; i++) {
		int fd;
		SSL *ssl;

		cr_assert_eq(SSL_CTX_set_ciphersuites(cctx, suites[i]), 1);
		ssl = cli_connect(TLS1_3_VERSION, &fd);
		cr_assert_str_eq(SSL_get_cipher_name(ssl), suites[i]);
		echo(ssl, 200000, 16384, 20 + i);
		cr_assert_eq(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED), 1);
		echo(ssl, 200000, 5000, 30 + i);
		cli_close(ssl, fd);
	}
	srv_idle_stats(&st);
	cr_assert_eq(st.tls_rec_zcrpc, 3);
	cr_assert_eq(st.tls_key_updates, 3);
	cr_assert_eq(st.tls_bad_records, 0);
}

/* -------------------------------------------------------------------------
 * KeyUpdates of our own: a server whose write key seals 3 records only
 */

static void srv_up_ku(void)
{
	ku_records = 3;
	srv_up();
}

TestSuite(stack_tlsrec_ku, .init = srv_up_ku, .fini = srv_down, .timeout = 60);

/* After every 3 records the server sends a KeyUpdate and moves its write
 * key; OpenSSL's client reads on across all of them, byte-identical, and
 * receives each one (it is asked for nothing back).  Every suite: the
 * limit given applies to ChaCha20-Poly1305 too. */
Test(stack_tlsrec_ku, key_updates_of_ours_every_3_records)
{
	static const char *const suites[] = { "TLS_AES_128_GCM_SHA256",
					      "TLS_AES_256_GCM_SHA384",
					      "TLS_CHACHA20_POLY1305_SHA256" };
	struct zc_reactor_stats st;
	unsigned got = 0;

	for (unsigned i = 0; i < 3; i++) {
		int fd;
		SSL *ssl;

		cr_assert_eq(SSL_CTX_set_ciphersuites(cctx, suites[i]), 1);
		ssl = cli_connect(TLS1_3_VERSION, &fd);
		SSL_set_msg_callback(ssl, msg_cb);
		SSL_set_msg_callback_arg(ssl, &got);
		/* Full records, odd ones, and one-byte ones. */
		echo(ssl, 1u << 20, 16384, 40 + i);
		echo(ssl, 300000, 4097, 43 + i);
		echo(ssl, 2000, 1, 46 + i);
		/* A KeyUpdate of the client's, asked to answer, in between:
		 * the answer moves the write key as well. */
		cr_assert_eq(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED), 1);
		echo(ssl, 200000, 16384, 49 + i);
		cli_close(ssl, fd);
	}
	srv_idle_stats(&st);
	/* The 1 MiB echo alone is 64 records of at most 16 KiB per
	 * connection, hence at least 21 keys of 3 (how the echo cuts the
	 * rest into records depends on how its receives batch). */
	cr_assert_geq(st.tls_key_updates_sent, 3 * 21, "sent %llu",
		      (unsigned long long)st.tls_key_updates_sent);
	/* Each of ours reached the client, and our 3 answers; but for one
	 * per connection before the close_notify, which comes after the
	 * client has gone. */
	cr_assert(got >= st.tls_key_updates_sent &&
		  got <= st.tls_key_updates_sent + 3, "client got %u, sent %llu",
		  got, (unsigned long long)st.tls_key_updates_sent);
	cr_assert_eq(st.tls_key_updates, 3);
	cr_assert_eq(st.tls_bad_records, 0);
	cr_assert_eq(st.tls_rec_zcrpc, 3);
}

/* -------------------------------------------------------------------------
 * Our client side against `openssl s_server -rev` (it answers each line
 * reversed, and sends two NewSessionTickets right after the handshake).
 */

struct rev {
	char got[64];
	size_t n;
	bool closed;
	int err;
};

static void rev_connect(struct zc_conn *c, void *ud)
{
	(void)ud;
	cr_assert_eq(zc_conn_send_copy(c, "hello world\n", 12), 0);
}

static void rev_data(struct zc_conn *c, struct zc_chain *d, void *ud)
{
	struct rev *o = ud;

	o->n += zc_chain_copyout(d, 0, o->got + o->n,
				 sizeof(o->got) - 1 - o->n);
	zc_chain_release(d);
	if (memchr(o->got, '\n', o->n))
		zc_conn_close(c, ZC_CLOSE_GRACEFUL);
}

static void rev_close(struct zc_conn *c, int err, void *ud)
{
	struct rev *o = ud;

	(void)c;
	o->closed = true;
	o->err = err;
}

static const struct zc_conn_ops rev_ops = {
	.on_connect = rev_connect,
	.on_data = rev_data,
	.on_close = rev_close,
};

/* A port free a moment ago. */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* s_server with @suite (killed at the end, or by timeout after 20 s);
 * our client sends a line and reads it reversed. */
static void against_s_server(const char *suite)
{
	struct zc_reactor_config rc = { .rxbuf_size = ZC_BUF_SIZE_MIN };
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct zc_reactor_stats st;
	struct zc_tls_ctx *ctx;
	struct zc_reactor *cr;
	struct zc_conn *c;
	struct rev o = { .n = 0 };
	const char *cert = tc_file(&T, "server.pem"),
		   *key = tc_file(&T, "server.key");
	char acc[32];
	pid_t pid;

	a.sin_port = htons(free_port());
	snprintf(acc, sizeof(acc), "127.0.0.1:%u", ntohs(a.sin_port));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execlp("timeout", "timeout", "20", "openssl", "s_server",
		       "-accept", acc, "-rev", "-ciphersuites", suite,
		       "-cert", cert, "-key", key, (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(tc_ctx(&T, (struct zc_tls_config){
				.role = ZC_TLS_CLIENT, .server_name = "localhost" },
			    NULL, "ca", &ctx), 0);
	cr_assert_eq(zc_reactor_create(&rc, &cr), 0);
	/* Until s_server listens and answers (bounded: 200 tries). */
	for (int i = 0; i < 200 && !o.n; i++) {
		o = (struct rev){ .n = 0 };
		cr_assert_eq(zc_connect(cr, (struct sockaddr *)&a, sizeof(a),
					5000, &rev_ops, &o, &c), 0);
		cr_assert_eq(zc_conn_start_tls(c, ctx, NULL), 0);
		for (int j = 0; j < 1000 && !o.closed; j++)
			cr_assert_geq(zc_reactor_run_once(cr, 10000), 0);
		if (!o.n)
			usleep(50000); /* refused: s_server not up yet */
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	o.got[o.n] = 0;
	cr_assert_str_eq(o.got, "dlrow olleh\n");
	cr_assert_eq(o.err, 0);
	zc_reactor_stats(cr, &st);
	cr_assert_geq(st.tls_rec_zcrpc, 1);
	cr_assert_eq(st.tls_rec_openssl, 0);
	cr_assert_eq(st.tls_bad_records, 0);
	cr_assert_eq(zc_reactor_destroy(cr), 0);
	zc_tls_ctx_put(ctx);
}

Test(stack_tlsrec, client_against_s_server_aes128)
{
	against_s_server("TLS_AES_128_GCM_SHA256");
}

Test(stack_tlsrec, client_against_s_server_aes256)
{
	against_s_server("TLS_AES_256_GCM_SHA384");
}

Test(stack_tlsrec, client_against_s_server_chacha20)
{
	against_s_server("TLS_CHACHA20_POLY1305_SHA256");
}
