/* SPDX-License-Identifier: MIT */
/*
 * rpc/examples/kv.h - the tiny protocol shared by kv_server and kv_client.
 *
 *   KV_PUT  request: u16 key length (little-endian), key, value
 *           answer:  empty
 *   KV_GET  request: key
 *           answer:  '+' then the value, or '-' when the key is absent
 */
#ifndef ZCRPC_EXAMPLES_KV_H
#define ZCRPC_EXAMPLES_KV_H

#include <zcrpc/zcrpc.h>

#define KV_PUT (ZC_RPC_METHOD_USER + 0)
#define KV_GET (ZC_RPC_METHOD_USER + 1)

#endif
