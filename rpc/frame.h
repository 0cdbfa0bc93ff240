/* SPDX-License-Identifier: MIT */
/*
 * rpc/frame.h - the zcrpc wire frame codec (private to rpc/ and its tests).
 *
 * docs/PROTOCOL.md is the normative description; this header is its C
 * mirror.  Every frame starts with a fixed 32-byte little-endian header:
 *
 *   off size field
 *     0   2  magic        0x525a ("ZR" on the wire)
 *     2   1  version      ZC_FRAME_VERSION
 *     3   1  type         enum zc_frame_type
 *     4   2  flags        ZC_FF_*
 *     6   2  status       enum zc_rpc_status (ERROR, GOAWAY), else 0
 *     8   4  method       method id (REQUEST), else 0
 *    12   4  length       payload bytes following this header
 *    16   8  id           request id (0 for connection frames)
 *    24   4  deadline     remaining budget in microseconds (REQUEST), else 0
 *    28   4  msg_len      total bytes of the message this frame is part of
 *
 * The decoders are pure functions: they read only the bytes they are given,
 * never allocate, never keep a pointer.  They answer the total frame size
 * (header + payload) when a whole valid frame is present, -EAGAIN when more
 * bytes are needed, or a negative errno that means "this peer is broken,
 * close the connection": -EPROTO (bad magic, unknown type or flag, field
 * impossible for the type), -EPROTONOSUPPORT (other version), -EMSGSIZE
 * (payload over the negotiated frame size).  A message too large for the
 * receiver is NOT a decoding error: msg_len is reported and the connection
 * layer refuses that one call.
 */
#ifndef ZCRPC_RPC_FRAME_H
#define ZCRPC_RPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

struct zc_chain;

#define ZC_FRAME_MAGIC		0x525au
#define ZC_FRAME_VERSION	1u
#define ZC_FRAME_HDR_LEN	32u
#define ZC_FRAME_HELLO_LEN	16u
#define ZC_FRAME_PING_LEN	8u
/* Bounds on the max_frame a peer may announce. */
#define ZC_FRAME_MIN		4096u
#define ZC_FRAME_MAX		(16u << 20)
/* Every fragment but the last of a message carries at least this many
 * bytes (PROTOCOL.md section 6): any sender can, since no peer announces
 * a max_frame below it, and it caps a message at max_message / 4096
 * fragments, so one-byte fragments are refused at the header. */
#define ZC_FRAG_MIN		ZC_FRAME_MIN

enum zc_frame_type {
	ZC_FT_HELLO	= 1,
	ZC_FT_REQUEST	= 2,
	ZC_FT_RESPONSE	= 3,
	ZC_FT_ERROR	= 4,
	ZC_FT_CANCEL	= 5,
	ZC_FT_PING	= 6,
	ZC_FT_PONG	= 7,
	ZC_FT_GOAWAY	= 8,
};
#define ZC_FT_LAST ZC_FT_GOAWAY

/* More fragments of the same message follow (REQUEST, RESPONSE only). */
#define ZC_FF_MORE	0x0001u
#define ZC_FF_KNOWN	ZC_FF_MORE

/* A decoded header, host byte order. */
struct zc_frame {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint16_t status;
	uint32_t method;
	uint32_t len;
	uint64_t id;
	uint32_t deadline_us;
	uint32_t msg_len;
};

/* Limits of the receiving side, from its own configuration. */
struct zc_frame_limits {
	uint32_t max_frame;	/* payload bytes per frame we accept */
};

/* HELLO payload: what the sender accepts from its peer. */
struct zc_hello {
	uint32_t max_message;	/* bytes per reassembled message */
	uint32_t max_frame;	/* payload bytes per frame */
	uint32_t max_inflight;	/* concurrent requests it serves, 0 = no limit */
	uint32_t flags;		/* reserved, 0 */
};

/* Name of a frame type ("request", ...) or "?" for an unknown value. */
const char *zc__frame_type_name(unsigned type);

/* Write @f as 32 header bytes at @dst.  @f must be valid (encoders only
 * produce what the decoder accepts; assert()ed). */
void zc__frame_encode(void *dst, const struct zc_frame *f);

/*
 * Parse and validate the header at @p (@len bytes readable).  Returns
 * ZC_FRAME_HDR_LEN + f->len when the header and the whole payload are
 * within @len, -EAGAIN when the header is incomplete or the payload is not
 * all there yet (*@f is filled whenever the header itself was complete and
 * valid), or -EPROTO / -EPROTONOSUPPORT / -EMSGSIZE for a malformed frame.
 */
int zc__frame_decode(const void *p, size_t len,
		     const struct zc_frame_limits *lim, struct zc_frame *f);

/* Validate the 32 header bytes at @hdr only: 0 or the errors above. */
int zc__frame_decode_hdr(const void *hdr, const struct zc_frame_limits *lim,
			 struct zc_frame *f);

/*
 * Same over the first bytes of @c (views of receive buffers).  The header
 * may straddle views; it is copied to the stack to be parsed.  Nothing is
 * consumed: the caller cuts ZC_FRAME_HDR_LEN and f->len bytes itself.
 */
int zc__frame_decode_chain(const struct zc_chain *c,
			   const struct zc_frame_limits *lim,
			   struct zc_frame *f);

/* HELLO payload codec.  Decode returns 0, or -EPROTO when a limit is out
 * of range (max_frame outside [ZC_FRAME_MIN, ZC_FRAME_MAX], max_message 0,
 * flags not 0). */
void zc__hello_encode(void *dst, const struct zc_hello *h);
int zc__hello_decode(const void *p, size_t len, struct zc_hello *h);

/* Little-endian field access, alignment-free. */
static inline uint16_t zc__get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t zc__get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t zc__get64(const uint8_t *p)
{
	return (uint64_t)zc__get32(p) | (uint64_t)zc__get32(p + 4) << 32;
}

static inline void zc__put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void zc__put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void zc__put64(uint8_t *p, uint64_t v)
{
	zc__put32(p, (uint32_t)v);
	zc__put32(p + 4, (uint32_t)(v >> 32));
}

#endif /* ZCRPC_RPC_FRAME_H */
