/* SPDX-License-Identifier: MIT */
/*
 * alloc/version.c - zc_version(): in the lowest module, so every layer
 * and every library flavour carries it.
 */
#include <zcrpc/version.h>

const char *zc_version(void)
{
	return ZCRPC_VERSION_STRING;
}
