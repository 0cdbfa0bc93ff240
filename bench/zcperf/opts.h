/* SPDX-License-Identifier: MIT */
/*
 * opts.h - zcperf's command line: what to run and how.
 *
 * One struct describes a test completely.  The client sends it to the
 * server over the control connection (ctl.h), so both ends of a run apply
 * the same send mode, free mode, receive buffer size and polling; only the
 * CPU lists are per side.
 */
#ifndef ZCPERF_OPTS_H
#define ZCPERF_OPTS_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ZP_DEFAULT_PORT 12866
#define ZP_DEFAULT_SECONDS 10.0
/* Shorter runs are refused: percentiles and CPU ticks (10 ms) need time. */
#define ZP_MIN_SECONDS 1.0
#define ZP_MAX_CONNS 4096u
#define ZP_MAX_DEPTH 4096u
#define ZP_MAX_REACTORS 64u
#define ZP_MAX_MSG (256u * 1024 * 1024)
#define ZP_MAX_IDLE 100000u

enum zp_test {
	ZP_TCP_STREAM = 0, /* client sends -m sized messages */
	ZP_TCP_MAERTS,     /* server sends */
	ZP_TCP_RR,         /* -r REQ,RESP raw bytes, one in flight per conn */
	ZP_RPC_RR,         /* RPC echo calls, -d in flight per conn */
	ZP_RPC_STREAM,     /* one -m sized RPC after another */
	ZP_NTESTS,
};

enum zp_role {
	ZP_ROLE_LOCAL = 0, /* no -H: both ends in this process (tour or -t) */
	ZP_ROLE_CLIENT,    /* -H HOST */
	ZP_ROLE_SERVER,    /* -s */
	ZP_ROLE_ECHO,      /* --echo */
};

enum zp_send {
	ZP_SEND_AUTO = 0,
	ZP_SEND_COPY,
	ZP_SEND_ZC,
};

enum zp_output {
	ZP_OUT_HUMAN = 0,
	ZP_OUT_JSON,
	ZP_OUT_CSV,
};

/* --arrival: the gaps between open-loop requests (openloop.h). */
enum zp_arrival {
	ZP_ARRIVAL_CONST = 0, /* every 1/rate seconds */
	ZP_ARRIVAL_POISSON,   /* exponential gaps of mean 1/rate */
};

/* --accept: how the server's listeners accept (ZC_LISTEN_ONESHOT_ACCEPT). */
enum zp_accept {
	ZP_ACCEPT_MULTISHOT = 0, /* one multishot accept per listener */
	ZP_ACCEPT_ONESHOT,       /* one single-shot accept at a time */
};

/* Everything a test needs; the control connection carries all of it
 * (but accept, see there). */
struct zp_test_cfg {
	enum zp_test test;
	double seconds;
	uint32_t msg_size;  /* -m, STREAM/MAERTS/RPC_STREAM */
	uint32_t req_size;  /* -r REQ */
	uint32_t resp_size; /* -r RESP */
	uint32_t conns;     /* -P */
	uint32_t depth;     /* -d, RPC_RR */
	uint32_t reactors;  /* -T, on each side */
	enum zp_send send;
	int free_mode;      /* enum zc_free_mode */
	int consumer_cpu;   /* -1: consume on the receiving reactor */
	uint32_t rxbuf;     /* receive buffer size, 0 = stack default */
	uint32_t rxring;    /* receive ring buffers, 0 = stack default */
	uint32_t sockbuf;   /* SO_SNDBUF and SO_RCVBUF, 0 = autotuned */
	uint32_t poll_us;   /* busy-poll budget, 0 = sleep at once */
	char cc[16];        /* TCP congestion control, "" = system default */
	bool tls;           /* --tls: every connection runs TLS */
	double rate;        /* --rate: calls/s in all, 0 = closed loop */
	int arrival;        /* --arrival: enum zp_arrival */
	uint32_t stall_ms;  /* --stall: server handler sleeps once, 0 = no */
	uint32_t idle;      /* --idle: RPC connections open but unused */
	/* --accept, enum zp_accept: a server option (-s, loopback), not
	 * sent by the client; a client learns the server's from READY. */
	int accept;
};

/* -H a,b,c: the servers of a multi-server run (RPC tests, through one
 * zc_rpc_balancer per client reactor). */
#define ZP_HOSTS_MAX 16

struct zp_opts {
	enum zp_role role;
	enum zp_output out;
	const char *host;
	/* -H with a comma: each server's host and control port (host[:port],
	 * [v6]:port; -p when the port is left out); nhosts 0 otherwise. */
	char hosts[ZP_HOSTS_MAX][64];
	uint16_t host_ports[ZP_HOSTS_MAX];
	unsigned nhosts;
	int lb;            /* --lb: enum zc_rpc_balance (default least) */
	uint16_t port;
	bool test_given;   /* -t seen: local role runs one test, not the tour */
	bool seconds_given;
	struct zp_test_cfg cfg;
	cpu_set_t cpus;        /* -C: this side's reactors (client or server) */
	bool cpus_given;
	cpu_set_t server_cpus; /* --server-cpus: asked of the server */
	bool server_cpus_given;
	bool verbose;
	/* --cert/--key/--ca (imply --tls); NULL: throwaway certificate. */
	const char *tls_cert, *tls_key, *tls_ca;
};

const char *zp_test_name(enum zp_test t);
int zp_test_parse(const char *name, enum zp_test *out);
const char *zp_send_name(enum zp_send s);
const char *zp_arrival_name(enum zp_arrival a);
int zp_arrival_parse(const char *name, enum zp_arrival *out);
const char *zp_accept_name(enum zp_accept a);
int zp_accept_parse(const char *name, enum zp_accept *out);
int zp_send_parse(const char *name, enum zp_send *out);

/* "64K", "1M", "4096" -> bytes.  Returns 0 or -EINVAL / -ERANGE. */
int zp_parse_size(const char *s, uint64_t max, uint64_t *out);
/* "0-3,6" -> set.  Returns 0 or -EINVAL. */
int zp_parse_cpulist(const char *s, cpu_set_t *out);
/* Set -> "0-3,6" into @buf. */
void zp_format_cpulist(const cpu_set_t *set, char *buf, size_t len);
/* The CPU that reactor @n of a side goes on: the (n mod count)-th CPU of
 * @set, which must not be empty. */
int zp_nth_cpu(const cpu_set_t *set, unsigned n);
/* Bytes in the compact form "64K" when exact, else plain. */
void zp_format_size(uint64_t v, char *buf, size_t len);

void zp_cfg_defaults(struct zp_test_cfg *cfg);
/* hosts.c: split -H's comma-separated list into @o->hosts; 0 or -EINVAL
 * after printing why. */
int zp_hosts_parse(struct zp_opts *o, const char *list);
/*
 * Fill @o from argv.  Returns 0, 1 when usage was printed on request
 * (--help), or -EINVAL after printing the reason to stderr.
 */
int zp_opts_parse(int argc, char **argv, struct zp_opts *o);
/* Check a configuration against the limits; NULL or the reason. */
const char *zp_cfg_check(const struct zp_test_cfg *cfg);
void zp_usage(FILE *f);

#endif /* ZCPERF_OPTS_H */
