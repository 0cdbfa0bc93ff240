/* SPDX-License-Identifier: MIT */
/*
 * watch.h - a watchdog over the calls into the stack that have no timeout
 * of their own (zc_reactor_call, zc_reactor_destroy, the rpc destroys).
 *
 * A benchmark that hangs tells nobody anything; one that says "stuck 60 s
 * in engine stop" points at the reactor that stopped answering.  Each
 * thread that drives reactors (the client's main thread, the server's)
 * brackets such calls with zp_watch_begin/end; a watchdog thread checks
 * the brackets once a second and, past the limit, prints what was stuck
 * and aborts, so that a core dump shows every thread where it hung.
 */
#ifndef ZCPERF_WATCH_H
#define ZCPERF_WATCH_H

/* Seconds a bracketed call may take before the process is aborted. */
#define ZP_WATCH_LIMIT_S 45u

/* Enter / leave a bracket on the calling thread.  @what must be a string
 * literal (kept by pointer). */
void zp_watch_begin(const char *what);
void zp_watch_end(void);

#endif /* ZCPERF_WATCH_H */
