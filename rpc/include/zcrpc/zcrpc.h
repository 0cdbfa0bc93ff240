/* SPDX-License-Identifier: MIT */
/*
 * zcrpc/zcrpc.h - the umbrella header: buffers (alloc.h), reactors and
 * connections (stack.h), TLS (tls.h), RPC server and client (rpc.h), and
 * the version (version.h).
 */
#ifndef ZCRPC_ZCRPC_H
#define ZCRPC_ZCRPC_H

#include <zcrpc/alloc.h>
#include <zcrpc/stack.h>
#include <zcrpc/tls.h>
#include <zcrpc/rpc.h>
#include <zcrpc/version.h>

#endif /* ZCRPC_ZCRPC_H */
