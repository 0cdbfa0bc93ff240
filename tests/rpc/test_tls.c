/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_tls.c - rpc over TLS: echo calls of every size class up
 * to 16 MiB over mutual TLS, byte-identical; the handler reads the
 * caller's verified identity (on a worker thread); the authorization
 * callback refuses by identity with PERMISSION_DENIED before the handler
 * runs; a client without a certificate gets no call through.  rt_stop()
 * checks that every buffer came home.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "rpc_test.h"
#include "tls_certs.h"

#define M_WHOAMI 300u
#define M_ADMIN 301u
#define ADMIN_SAN "URI:spiffe://zcrpc/client1"

static struct tc T;
static atomic_uint handler_runs_admin;

static void free_release(void *arg, void *data)
{
	free(data);
}

/* Answers "<subject>|<first SAN>", or "none" without an identity.  A
 * worker: the answer is malloc memory wrapped into the pool's tracker. */
static void whoami(struct zc_rpc_call *call, struct zc_chain *req, void *arg)
{
	const struct zc_tls_peer *p = zc_rpc_call_peer_identity(call);
	char *buf = malloc(512);
	struct zc_chain resp = ZC_CHAIN_INIT;
	struct zc_buf *b;
	struct zc_view v;

	zc_chain_release(req);
	cr_assert_not_null(buf);
	if (p)
		snprintf(buf, 512, "%s|%s", p->subject, p->nsan ? p->san[0] : "");
	else
		snprintf(buf, 512, "none");
	cr_assert_eq(zc_buf_wrap(zc_reactor_pool(zc_rpc_call_reactor(call)),
				 buf, strlen(buf), free_release, NULL, &b), 0);
	cr_assert_eq(zc_view_adopt(&v, b, 0, strlen(buf)), 0);
	cr_assert_eq(zc_chain_append(&resp, &v), 0);
	(void)zc_rpc_reply(call, &resp);
}

static void admin(struct zc_rpc_call *call, struct zc_chain *req, void *arg)
{
	atomic_fetch_add(&handler_runs_admin, 1);
	(void)zc_rpc_reply(call, req);
}

static void setup(struct zc_rpc_server *s, void *arg)
{
	cr_assert_eq(zc_rpc_server_register(s, M_WHOAMI, "whoami",
					    ZC_RPC_WORKER, 0, whoami, NULL), 0);
	cr_assert_eq(zc_rpc_server_register(s, M_ADMIN, "admin",
					    ZC_RPC_INLINE, 0, admin, NULL), 0);
}

/* Verified peers only; ADMIN for the one SPIFFE id. */
static bool authorize(void *arg, uint32_t method,
		      const struct zc_tls_peer *peer)
{
	if (!peer)
		return false;
	if (method != M_ADMIN)
		return true;
	for (unsigned i = 0; i < peer->nsan; i++)
		if (!strcmp(peer->san[i], ADMIN_SAN))
			return true;
	return false;
}

/* Servers ask for a certificate and let the callback decide about peers
 * without one; clients check the server's address. */
static struct zc_tls_ctx *ctx(enum zc_tls_role role, const char *leaf)
{
	struct zc_tls_ctx *c;

	cr_assert_eq(tc_ctx(&T, (struct zc_tls_config){
		.role = role,
		.verify = role == ZC_TLS_SERVER ? ZC_TLS_VERIFY_PEER :
						  ZC_TLS_VERIFY_REQUIRE,
		.server_name = role == ZC_TLS_CLIENT ? "127.0.0.1" : NULL },
		leaf, "ca", &c), 0);
	return c;
}

static int call(struct zc_rpc_client *cli, uint32_t method, size_t len,
		uint32_t seed, struct zc_chain *resp)
{
	struct zc_chain req;

	rt_chain(rt_pool, &req, len, seed);
	zc_chain_init(resp);
	return zc_rpc_call_sync(cli, method, &req, NULL, resp);
}

static void expect_text(struct zc_rpc_client *cli, const char *want)
{
	struct zc_chain resp;
	char buf[512] = { 0 };

	cr_assert_eq(call(cli, M_WHOAMI, 1, 0, &resp), ZC_RPC_OK);
	zc_chain_copyout(&resp, 0, buf, sizeof(buf) - 1);
	zc_chain_release(&resp);
	cr_assert_str_eq(buf, want);
}

static void certs(void)
{
	cr_assert_eq(tc_make(&T), 0, "making certificates");
}

/* Runs after a failed assertion too: no key is left in /tmp. */
static void certs_drop(void)
{
	tc_drop(&T);
}

Test(rpc_tls, identity_and_authorization, .timeout = 120, .init = certs,
     .fini = certs_drop)
{
	static const size_t sizes[] = { 1, 100, 4095, 16384, 16385, 65536,
					200000, 1 << 20, 16 << 20 };
	struct zc_tls_ctx *sctx, *cctx, *ictx, *nctx;
	struct rt_opts o = { .sc = { .workers = 1, .authorize = authorize },
			     .setup = setup };
	struct zc_rpc_client *intruder, *anon;
	struct zc_rpc_method_stats ms;
	struct zc_chain resp;
	struct rt_env e;

	sctx = ctx(ZC_TLS_SERVER, "server");
	cctx = ctx(ZC_TLS_CLIENT, "client");
	ictx = ctx(ZC_TLS_CLIENT, "intruder");
	nctx = ctx(ZC_TLS_CLIENT, NULL);
	o.sc.tls = sctx;
	o.cc.tls = cctx;
	rt_start(&e, &o);

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int st = call(e.cli, ZC_RPC_METHOD_ECHO, sizes[i],
			      (uint32_t)i + 1, &resp);

		cr_assert_eq(st, ZC_RPC_OK, "echo %zu: %s", sizes[i],
			     zc_rpc_status_name(st));
		cr_assert(rt_check(&resp, sizes[i], (uint32_t)i + 1),
			  "echo %zu content", sizes[i]);
		zc_chain_release(&resp);
	}
	expect_text(e.cli, "CN=client1,O=zcrpc|" ADMIN_SAN);
	cr_assert_eq(call(e.cli, M_ADMIN, 10, 3, &resp), ZC_RPC_OK);
	zc_chain_release(&resp);
	cr_assert_eq(atomic_load(&handler_runs_admin), 1);

	/* A valid certificate, another identity: no ADMIN. */
	intruder = rt_client(&e, &(struct zc_rpc_client_config){
		.conns = 1, .tls = ictx });
	expect_text(intruder, "CN=intruder|DNS:intruder");
	cr_assert_eq(call(intruder, M_ADMIN, 10, 3, &resp),
		     ZC_RPC_PERMISSION_DENIED);
	zc_chain_release(&resp);
	cr_assert_eq(atomic_load(&handler_runs_admin), 1,
		     "the handler ran for a refused call");

	/* TLS without a certificate: no identity, nothing allowed. */
	anon = rt_client(&e, &(struct zc_rpc_client_config){
		.conns = 1, .tls = nctx });
	cr_assert_eq(call(anon, ZC_RPC_METHOD_ECHO, 10, 3, &resp),
		     ZC_RPC_PERMISSION_DENIED);
	zc_chain_release(&resp);
	cr_assert_str_eq(zc_rpc_status_name(ZC_RPC_PERMISSION_DENIED),
			 "permission_denied");

	cr_assert_eq(zc_rpc_server_method_stats(e.srv, M_ADMIN, &ms), 0);
	cr_assert_eq(ms.by_status[ZC_RPC_PERMISSION_DENIED], 1);
	zc_rpc_client_destroy(intruder);
	zc_rpc_client_destroy(anon);
	rt_stop(&e);
	zc_tls_ctx_put(sctx);
	zc_tls_ctx_put(cctx);
	zc_tls_ctx_put(ictx);
	zc_tls_ctx_put(nctx);
}
