/*
 * bench_common.h - what the benchmark's load generators (loadgen.c, fanout.c) share: the
 * latency histogram, the command line's numbers, the loopback-only address, the clock.
 *
 * Linux only, like the generators (tests/bench/CMakeLists.txt builds it into both).
 * Messages name the program given to lab_startup() ("loadgen: ...", "fanout: ...").
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include "lab.h"

#include <stdint.h>

/* ---- latency: a histogram, so that a long run needs no more memory than a short one ----- */

/* Values below 64 ns have a bucket each; above, every power of two [2^k, 2^(k+1)) is split
 * into 64 equal steps, so a percentile read from it is within 1/128 (0.8 %) of the truth. */
#define BENCH_STEPS 64
#define BENCH_ROWS 64

struct bench_histogram {
    uint64_t count[BENCH_ROWS][BENCH_STEPS];
    uint64_t total;
};

void bench_histogram_add(struct bench_histogram *h, int64_t nanoseconds);

/* The value below which `share` (0-1) of the recorded values fall, in microseconds. */
double bench_histogram_percentile_us(const struct bench_histogram *h, double share);

/* ---- the command line ------------------------------------------------------------------ */

/* A number of seconds from low to high (decimals allowed); exits with a usage error else. */
double bench_parse_seconds(const char *option, const char *text, double low, double high);

/* A whole number from low to high; exits with a usage error on anything else. */
long bench_parse_count(const char *option, const char *text, long low, long high);

/* Resolves host:port and refuses any address off this machine (127.0.0.0/8 or ::1): a load
 * generator pointed at somebody else's server is an attack, whatever it was meant to be. */
void bench_resolve_loopback(const char *host, const char *port, struct sockaddr_storage *address,
                            socklen_t *length);

/* Each connection is a descriptor: raises the soft limit to the hard one if it is needed. */
void bench_allow_descriptors(long needed);

/* ---- the clock -------------------------------------------------------------------------- */

int64_t bench_now_ns(void); /* CLOCK_MONOTONIC: one clock for every process of the machine */
int64_t bench_seconds_to_ns(double seconds);

#endif
