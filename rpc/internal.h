/* SPDX-License-Identifier: MIT */
/*
 * rpc/internal.h - helpers shared by the rpc/ files: an id map, a
 * multi-producer hand-off list into a reactor, the framing send queue and
 * the receive parser plumbing.  Not installed.
 */
#ifndef ZCRPC_RPC_INTERNAL_H
#define ZCRPC_RPC_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <zcrpc/rpc.h>

#include "frame.h"
/* The leveled log of every layer (zc_log_set()); downward, see there. */
#include "../stack/log.h"

/* Answers up to this size are copied next to their header; larger slices
 * travel as views (and zero-copy, by the connection's send mode). */
#define ZC__TX_COPY_MAX 2048u

static inline uint64_t zc__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Counters read from any thread, written relaxed. */
typedef atomic_uint_fast64_t zc__ctr;

static inline void zc__ctr_add(zc__ctr *c, uint64_t v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static inline void zc__ctr_sub(zc__ctr *c, uint64_t v)
{
	atomic_fetch_sub_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t zc__ctr_get(const zc__ctr *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Log one line at ZC_LOG_WARN with reason "log" and no peer (the sink of
 * zc_log_set(); by default stderr, "zcrpc: warn: log: TEXT").  New code
 * uses zc__logc()/zc__logp() of stack/log.h, which carry the peer and a
 * stable reason. */
void zc__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* -------------------------------------------------------------------------
 * u64 -> pointer map, open addressing with backward-shift deletion.  Key 0
 * is never stored (request id 0 is reserved on the wire).  Single thread.
 */
struct zc__map_ent {
	uint64_t key;	/* 0: empty */
	void *val;
};

struct zc__map {
	struct zc__map_ent *ents;
	uint32_t mask;	/* capacity - 1, capacity a power of two, or 0 */
	uint32_t n;
};

void zc__map_init(struct zc__map *m);
void zc__map_free(struct zc__map *m);
void *zc__map_get(const struct zc__map *m, uint64_t key);
/* 0, or -ENOMEM (nothing changed).  @key must not be present. */
int zc__map_put(struct zc__map *m, uint64_t key, void *val);
/* Removes and returns the value, NULL when absent. */
void *zc__map_del(struct zc__map *m, uint64_t key);
/* Iterate: for (i = 0; zc__map_next(m, &i, &k, &v);) - no changes inside. */
bool zc__map_next(const struct zc__map *m, uint32_t *i, uint64_t *k,
		  void **v);

/* -------------------------------------------------------------------------
 * Hand-off into a reactor: any thread pushes nodes, the reactor takes the
 * whole list in one exchange.  One zc_work is queued per batch (when the
 * list goes from empty to non-empty), so a burst of replies from workers
 * costs the reactor one wake-up.
 */
struct zc__inode {
	struct zc__inode *next;
};

struct zc__inbox {
	_Atomic(struct zc__inode *) head;
	atomic_bool queued;
	struct zc_work work;
	struct zc_reactor *reactor;
	void (*run)(struct zc__inbox *ib, struct zc__inode *list);
};

void zc__inbox_init(struct zc__inbox *ib, struct zc_reactor *r,
		    void (*run)(struct zc__inbox *, struct zc__inode *));
/* Any thread. */
void zc__inbox_push(struct zc__inbox *ib, struct zc__inode *n);

/* -------------------------------------------------------------------------
 * The send side of one connection: messages waiting to be framed, taken
 * round-robin one frame at a time, headers (and small payloads) written
 * into a staging pool buffer.
 *
 * The stage is shared by every connection of one owner on one reactor (a
 * client, a server's reactor): frames of many connections land one after
 * the other in one buffer, as small packets share a page_frag in the
 * kernel.  Per connection, that keeps the bytes written per call in a few
 * warm cache lines instead of one pool buffer each (at 1,000 connections,
 * 1,000 buffers 64 KiB apart, which share cache sets), and an idle
 * connection holds no stage at all.
 *
 * Staging rule (the page_frag rule): the stage buffer is written only past
 * its cursor, and every byte before the cursor is in a view or about to be
 * (a flush's run, below), so no byte that a view (or the kernel) can see is
 * ever rewritten.
 */
struct zc__tx_stage {
	struct zc_pool *pool;
	struct zc_buf *buf;	/* our reference, or NULL */
	uint32_t cur;		/* write cursor */
	bool used;		/* written since the last zc__tx_stage_tick() */
};

/* Reactor thread of @pool (fini: any thread, the pool still alive). */
void zc__tx_stage_init(struct zc__tx_stage *st, struct zc_pool *pool);
/* Drop our reference on the buffer (its views keep it while sent). */
void zc__tx_stage_fini(struct zc__tx_stage *st);
/* Periodic: a stage nobody wrote since the last tick lets its buffer go,
 * so that a quiet owner pins no pool slab against trimming. */
void zc__tx_stage_tick(struct zc__tx_stage *st);

struct zc__txmsg {
	struct zc__txmsg *next;
	struct zc_frame hdr;	/* len and flags are set per frame */
	struct zc_chain body;	/* bytes not yet framed */
	uint32_t framed;	/* bytes already framed */
	uint32_t small_len;
	uint8_t small[64];	/* payload of control frames */
	/* Where the owner keeps a pointer to this message (cleared when
	 * the message is fully framed or dropped), or NULL. */
	struct zc__txmsg **backref;
	/* Its payload is reported through released() (the owner charged
	 * it to a budget). */
	bool counted;
	/* Called once when the message leaves the queue for good (fully
	 * framed or dropped), with @owner set by whoever queued it: the
	 * server keeps the call of an answer being sent until then. */
	void (*on_free)(struct zc__txmsg *m);
	void *owner;
	/* Receive-ring bytes its body pins, charged to *pin_acct by the
	 * owner and given back when the message leaves the queue. */
	size_t pinned;
	size_t *pin_acct;
};

struct zc__tx {
	struct zc_conn *conn;
	struct zc__tx_stage *stage;	/* the owner's, shared */
	struct zc__txmsg *head, *tail;
	/* During a flush, the bytes this connection wrote into the stage
	 * and not yet made a view: [run_start, run_end) of @run, with a
	 * reference of its own (the stage may move on to another buffer). */
	struct zc_buf *run;
	uint32_t run_start, run_end;
	uint32_t max_frame;	/* the peer's */
	bool dead;		/* connection closing: drop, don't send */
	size_t window;		/* bytes at most handed to the stack */
	size_t in_stack;	/* handed to the stack, done() not yet run */
	size_t queued;		/* payload bytes waiting in messages */
	size_t nmsgs;		/* messages queued (each costs a struct) */
	/* Called on the reactor with counted payload bytes given back. */
	void (*released)(struct zc__tx *tx, size_t payload);
	/* Optional, set by the owner after init: called last in a flush
	 * that leaves the queue idle (every byte with the stack), e.g. to
	 * close once a drain has sent everything. */
	void (*on_idle)(struct zc__tx *tx);
	/* Last, past the fields every flush reads (only its length is
	 * read while nothing is refused). */
	size_t refused_acct;
	struct zc_chain refused; /* built, refused by zc_conn_send(-EAGAIN) */
};

void zc__tx_init(struct zc__tx *tx, struct zc_conn *conn,
		 struct zc__tx_stage *stage, size_t window,
		 void (*released)(struct zc__tx *, size_t));
/* A new message: body empty, small_len 0, the header fields set by the
 * caller.  NULL on -ENOMEM. */
struct zc__txmsg *zc__txmsg_new(void);
void zc__txmsg_free(struct zc__txmsg *m);
/* Queue @m (its msg_len is set here from the body). */
void zc__tx_queue(struct zc__tx *tx, struct zc__txmsg *m);
/* Unlink @m if no byte of it was framed yet: true, and the caller owns
 * @m again.  False when framing started (it will finish). */
bool zc__tx_unqueue(struct zc__tx *tx, struct zc__txmsg *m);
/* Unlink @m wherever it is, even when framing started: its remaining
 * fragments are never sent (a CANCEL, a drain that runs out of time).
 * The caller owns @m again.  False when @m is not queued. */
bool zc__tx_remove(struct zc__tx *tx, struct zc__txmsg *m);
/* Nothing queued, nothing refused: every byte is with the stack. */
static inline bool zc__tx_idle(const struct zc__tx *tx)
{
	return !tx->head && !zc_chain_len(&tx->refused);
}

/* Memory the queue holds for its peer: payload waiting or with the stack,
 * plus each queued message's struct and header, so that a flood of tiny
 * control replies (PONGs) counts for what it costs. */
static inline size_t zc__tx_held(const struct zc__tx *tx)
{
	return tx->queued + tx->in_stack +
	       tx->nmsgs * (sizeof(struct zc__txmsg) + ZC_FRAME_HDR_LEN);
}
/* Frame and hand to the stack what the window allows. */
void zc__tx_flush(struct zc__tx *tx);
/* Connection closing: free every queued message (backrefs cleared).
 * Returns the counted payload bytes dropped. */
size_t zc__tx_drop(struct zc__tx *tx);
/* Queue a control frame with up to 64 payload bytes; -ENOMEM. */
int zc__tx_control(struct zc__tx *tx, const struct zc_frame *hdr,
		   const void *payload, uint32_t len);

/* -------------------------------------------------------------------------
 * Receive side: append a delivery to the connection's pending bytes.
 */
int zc__rx_append(struct zc_chain *rx, struct zc_chain *data);

/* -------------------------------------------------------------------------
 * Received messages out of the receive ring (reasm.c).
 *
 * A message is reassembled into a chain @msg owned by the caller: in view
 * mode @msg holds views of the received buffers (zero-copy); in copy mode
 * the bytes go into heap memory of msg_len bytes held by the reasm, and
 * zc__reasm_finish() appends it to @msg as one view.  A message switches
 * to copy mode (for good) at the first fragment added without
 * @keep_views: the caller decides, from what its views pin.
 */
struct zc__reasm {
	struct zc_buf *heap;	/* copy mode: our reference, else NULL */
	uint32_t got;		/* bytes added */
	uint32_t frags;		/* fragments added */
	size_t pinned;		/* ring bytes the views in @msg pin */
};

void zc__reasm_init(struct zc__reasm *ra);
/* Move @len bytes from the head of @rx (which holds them) into the
 * message.  Returns 0, or -ENOMEM / -EINVAL with nothing changed. */
int zc__reasm_add(struct zc__reasm *ra, struct zc_chain *msg,
		  struct zc_chain *rx, uint32_t len, uint32_t msg_len,
		  struct zc_pool *pool, bool keep_views);
/* A message still in view mode that pins ring buffers goes to copy mode
 * now (memory from @pool): 0, or -ENOMEM with nothing changed. */
int zc__reasm_unpin(struct zc__reasm *ra, struct zc_chain *msg,
		    uint32_t msg_len, struct zc_pool *pool);
/* All fragments are in: the heap memory (if any) becomes a view at the
 * end of @msg.  Returns 0 or -ENOMEM (the reasm keeps it). */
int zc__reasm_finish(struct zc__reasm *ra, struct zc_chain *msg);
/* Drop the heap memory of an unfinished message. */
void zc__reasm_release(struct zc__reasm *ra);
/* Replace @c's views by one view of a heap copy; nothing changes on
 * error (-ENOMEM). */
int zc__chain_to_heap(struct zc_chain *c, struct zc_pool *pool);
/* Bytes of pool buffers the views of @c from index @from on pin: each
 * buffer counts whole, since one view keeps a whole ring buffer from
 * going back (heap memory pins nothing); a view of the same buffer as
 * the view before it (index @from - 1 included) adds nothing. */
size_t zc__chain_pinned(const struct zc_chain *c, uint32_t from);

#endif /* ZCRPC_RPC_INTERNAL_H */
