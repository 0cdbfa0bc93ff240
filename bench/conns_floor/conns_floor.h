/* SPDX-License-Identifier: MIT */
/*
 * conns_floor.h - what the files of conns_floor share: one run's two
 * threads (client.c, echo.c), the I/O and clocks both use (io.c), and the
 * runs and report (main.c, which says what the tool measures).
 */
#ifndef ZC_BENCH_CONNS_FLOOR_H
#define ZC_BENCH_CONNS_FLOOR_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wait_mode { WAIT_URING, WAIT_EPOLL, WAIT_MODES };

/* The phases of a run, set by the client, read by the echo thread. */
enum { PHASE_WARM, PHASE_TIMED, PHASE_DONE };

#define WARMUP_S 0.5
/* Opening and accepting every connection; longer is a hang. */
#define SETUP_S 120.0
/* The client's last answers after the window, and the echo thread's wait
 * for the client's close: longer is a hang. */
#define DRAIN_S 5.0
/* The longest either thread sleeps before looking at the clock again. */
#define WAIT_MS 200
/* Ring and epoll batch sizes: at most this many entries. */
#define RING_SQ_MAX 4096u

/* One connection as one side sees it: @got bytes of the message held. */
struct conn {
	int fd;
	unsigned got;
	uint64_t seq; /* client: the number of the request in flight */
};

/* What one thread counted: @calls (client: answers; echo thread: echoes)
 * and CPU seconds between the marks it saw, and its totals. */
struct side_stats {
	unsigned long calls, total;
	unsigned long sent; /* client: requests sent in all */
	unsigned long retrans; /* segments its sockets sent again */
	double cpu_s, secs;
	double runq_s;      /* runnable, waiting for its CPU (-1: unknown) */
	int err;            /* 0 or -errno */
};

/* The two threads of one run.  The client owns @conn[] and its sockets,
 * the echo thread @srv[] and its sockets; @cs and @ss are each thread's
 * own until main() joins them.  The atomics are the only fields both
 * threads touch while they run. */
struct run_ctl {
	enum wait_mode mode;
	unsigned open, active;
	size_t size;
	int client_cpu, server_cpu;
	bool own_tables;        /* each thread unshares its descriptors */
	double secs;
	atomic_int port;        /* echo thread -> client: listening (0: not yet) */
	atomic_bool accepted;   /* echo thread -> client: all accepted */
	atomic_int phase;       /* client -> echo thread: PHASE_* */
	atomic_bool client_gone;   /* client: every socket closed */
	atomic_bool server_failed; /* echo thread: gave up */
	struct conn *conn, *srv;
	char *cbuf, *sbuf;      /* @size bytes per connection, each side */
	struct side_stats cs, ss;
};

/* Both sides: the window marks.  The client moves the phase on its clock;
 * the echo thread takes its marks when it first sees a phase, so each
 * side's CPU and count cover the same span of its own work. */
struct marks {
	double t0, cpu0, runq0;
	unsigned long calls0;
	int seen;
};

/*
 * user_data: the connection's index shifted left by one, and the low bit
 * set for a send.  Sends succeed silently (CQE_SKIP_SUCCESS): a send
 * completion is always a failure.
 */
static inline uint64_t ud_pack(unsigned idx, bool send)
{
	return (uint64_t)idx << 1 | send;
}

static inline unsigned ud_idx(uint64_t ud)
{
	return (unsigned)(ud >> 1);
}

static inline bool ud_send(uint64_t ud)
{
	return ud & 1;
}

/* io.c */
void cf_nap_ms(int ms);
void cf_mark_start(struct marks *m, unsigned long calls);
void cf_mark_end(const struct marks *m, unsigned long calls,
		 struct side_stats *st);
int cf_ring_init(struct io_uring *ring, unsigned want);
int cf_queue_recv(struct io_uring *ring, struct conn *k, unsigned idx,
		  char *buf, size_t size);
int cf_queue_send_recv(struct io_uring *ring, struct conn *k, unsigned idx,
		       char *buf, size_t size);
int cf_ring_wait(struct io_uring *ring);
int cf_recv_some(struct conn *k, char *buf, size_t size);
int cf_epoll_add(int ep, int fd, unsigned idx);
unsigned long cf_retrans_sum(const struct conn *k, unsigned n);

/* The two threads of a run, each given the run's struct run_ctl. */
void *cf_client_main(void *arg);
void *cf_echo_main(void *arg);

#endif /* ZC_BENCH_CONNS_FLOOR_H */
