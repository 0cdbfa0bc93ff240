/* SPDX-License-Identifier: MIT */
/*
 * kv_client - talk to kv_server.
 *
 *   kv_client [-h HOST] -p PORT put KEY VALUE | get KEY ...
 *
 * Runs the operations in order with the blocking wrapper and prints one
 * line per operation ("ok", "KEY = VALUE", "KEY: not found").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv.h"

static void free_request(void *arg, void *data)
{
	free(data);
}

/* A request chain over a malloc()ed copy of two parts; the stack frees it
 * (through the release callback) once it is sent. */
static int request(struct zc_pool *pool, const void *a, size_t alen,
		   const void *b, size_t blen, struct zc_chain *out)
{
	char *p = malloc(alen + blen);
	struct zc_buf *buf;
	struct zc_view v;

	zc_chain_init(out);
	if (!p)
		return -ENOMEM;
	memcpy(p, a, alen);
	memcpy(p + alen, b, blen);
	if (zc_buf_wrap(pool, p, alen + blen, free_request, NULL, &buf)) {
		free(p);
		return -ENOMEM;
	}
	if (zc_view_adopt(&v, buf, 0, alen + blen) ||
	    zc_chain_append(out, &v)) {
		zc_buf_put(buf);
		return -ENOMEM;
	}
	return 0;
}

static int run(struct zc_rpc_client *cli, struct zc_pool *pool, int argc,
	       char **argv)
{
	struct zc_rpc_call_opts opts = { .timeout_us = 2000000 };

	for (int i = 0; i < argc; i++) {
		bool is_put = !strcmp(argv[i], "put");
		struct zc_chain req, resp;
		const char *key = argv[i + 1];
		size_t klen;
		int st;

		if ((!is_put && strcmp(argv[i], "get")) || i + 1 >= argc ||
		    (is_put && i + 2 >= argc))
			return -EINVAL;
		klen = strlen(key);
		if (is_put) {
			uint8_t hdr[2] = { (uint8_t)klen, (uint8_t)(klen >> 8) };
			char *kv = malloc(klen + strlen(argv[i + 2]));

			if (!kv)
				return -ENOMEM;
			memcpy(kv, key, klen);
			memcpy(kv + klen, argv[i + 2], strlen(argv[i + 2]));
			st = request(pool, hdr, 2, kv,
				     klen + strlen(argv[i + 2]), &req);
			free(kv);
			i += 2;
		} else {
			st = request(pool, key, klen, "", 0, &req);
			i += 1;
		}
		if (st)
			return st;
		zc_chain_init(&resp);
		st = zc_rpc_call_sync(cli, is_put ? KV_PUT : KV_GET, &req,
				      &opts, &resp);
		if (st < 0) {
			zc_chain_release(&req);
			return st;
		}
		if (st != ZC_RPC_OK) {
			printf("%s: %s\n", key, zc_rpc_status_name(st));
		} else if (is_put) {
			printf("ok\n");
		} else {
			size_t n = zc_chain_len(&resp);
			char *val = malloc(n + 1);

			if (!val) {
				zc_chain_release(&resp);
				return -ENOMEM;
			}
			val[zc_chain_copyout(&resp, 0, val, n)] = 0;
			if (val[0] == '+')
				printf("%s = %s\n", key, val + 1);
			else
				printf("%s: not found\n", key);
			free(val);
		}
		zc_chain_release(&resp);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	const char *host = "127.0.0.1";
	static const struct option longopts[] = {
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "ca", required_argument, NULL, 'a' },
		{ "name", required_argument, NULL, 'n' },
		{ 0 }
	};
	/* TLS with --ca (the server's CA); --cert/--key add our own
	 * certificate (mutual TLS); the server must be --name [HOST]. */
	struct zc_tls_config tc = { .role = ZC_TLS_CLIENT };
	struct zc_tls_ctx *tls = NULL;
	struct zc_reactor_config rc = { 0 };
	struct zc_rpc_client *cli;
	struct zc_reactor *r;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "+h:p:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h': host = optarg; break;
		case 'p': sin.sin_port = htons((uint16_t)atoi(optarg)); break;
		case 'c': tc.cert_file = optarg; break;
		case 'k': tc.key_file = optarg; break;
		case 'a': tc.ca_file = optarg; break;
		case 'n': tc.server_name = optarg; break;
		default: return 2;
		}
	}
	if (!sin.sin_port || inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "usage: kv_client [-h HOST] -p PORT [--ca FILE "
			"[--cert FILE --key FILE] [--name NAME]] "
			"put KEY VALUE | get KEY ...\n");
		return 2;
	}
	if (!tc.server_name)
		tc.server_name = host;
	if (tc.ca_file && (ret = zc_tls_ctx_new(&tc, &tls))) {
		fprintf(stderr, "tls: %s\n", strerror(-ret));
		return 1;
	}
	ret = zc_reactor_spawn(&rc, &r);
	if (ret) {
		fprintf(stderr, "reactor: %s\n", strerror(-ret));
		return 1;
	}
	ret = zc_rpc_client_create(&(struct zc_rpc_client_config){
		.reactor = r, .addr = (struct sockaddr *)&sin,
		.addrlen = sizeof(sin), .conns = 1, .tls = tls }, &cli);
	if (!ret) {
		ret = run(cli, zc_reactor_pool(r), argc - optind,
			  argv + optind);
		zc_rpc_client_destroy(cli);
	}
	if (ret)
		fprintf(stderr, "kv_client: %s\n", strerror(-ret));
	while (zc_reactor_destroy(r) == -EBUSY)
		usleep(1000);
	zc_tls_ctx_put(tls);
	return ret ? 1 : 0;
}
