/* SPDX-License-Identifier: MIT */
/*
 * report.h - human, JSON and CSV output of results.
 *
 * Human output follows netperf and redis-benchmark: configuration first,
 * then results, then the latency percentiles and the stack's counters.
 * JSON is one object per test on its own line (jq reads the stream as is);
 * field names are a contract with bench/compare and tests/bench.  CSV is
 * one header line and one line per test.
 */
#ifndef ZCPERF_REPORT_H
#define ZCPERF_REPORT_H

#include <stdio.h>

#include "opts.h"
#include "result.h"

/* Print one result in @out's format; CSV prints its header when @first. */
void zp_report(FILE *f, enum zp_output out, const struct zp_result *r,
	       bool first);
/* The tour's comparison table: one row per result. */
void zp_report_table(FILE *f, const struct zp_result *r, unsigned n);

#endif /* ZCPERF_REPORT_H */
