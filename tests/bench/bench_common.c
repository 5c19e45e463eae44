/*
 * bench_common.c - the parts loadgen.c and fanout.c share (bench_common.h says what each
 * does). Built into both by tests/bench/CMakeLists.txt; Linux only.
 */
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

void bench_histogram_add(struct bench_histogram *h, int64_t nanoseconds)
{
    uint64_t value = nanoseconds < 0 ? 0 : (uint64_t)nanoseconds;
    int row = 0;
    uint64_t step = value;
    if (value >= BENCH_STEPS) {
        int top = 6; /* the highest bit set: value is in [2^top, 2^(top + 1)) */
        while ((value >> (top + 1)) != 0) {
            top++;
        }
        row = top - 5;
        step = (value >> (top - 6)) - BENCH_STEPS;
    }
    h->count[row][step]++;
    h->total++;
}

/* The middle of a bucket, in nanoseconds. */
static double bucket_value(int row, int step)
{
    if (row == 0) {
        return step;
    }
    double width = (double)((uint64_t)1 << (row - 1));
    return (BENCH_STEPS + step) * width + width / 2;
}

double bench_histogram_percentile_us(const struct bench_histogram *h, double share)
{
    double wanted = share * (double)h->total; /* the rank, rounded up: ceil() without libm */
    uint64_t rank = (uint64_t)wanted;
    if ((double)rank < wanted) {
        rank++;
    }
    uint64_t seen = 0;
    for (int row = 0; row < BENCH_ROWS; row++) {
        for (int step = 0; step < BENCH_STEPS; step++) {
            seen += h->count[row][step];
            if (seen >= rank && seen > 0) {
                return bucket_value(row, step) / 1000.0;
            }
        }
    }
    return 0.0;
}

double bench_parse_seconds(const char *option, const char *text, double low, double high)
{
    char *end;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || !(value >= low && value <= high)) {
        char message[80];
        snprintf(message, sizeof message, "%s: expected seconds from %g to %g", option, low, high);
        lab_usage_error(message, text);
    }
    return value;
}

long bench_parse_count(const char *option, const char *text, long low, long high)
{
    long value;
    if (lab_parse_count(text, high, &value) != 0 || value < low) {
        char message[80];
        snprintf(message, sizeof message, "%s: expected a whole number from %ld to %ld", option,
                 low, high);
        lab_usage_error(message, text);
    }
    return value;
}

void bench_resolve_loopback(const char *host, const char *port, struct sockaddr_storage *address,
                            socklen_t *length)
{
    unsigned short number;
    if (lab_parse_port(port, &number) != 0 || number == 0) {
        lab_usage_error("invalid port (expected 1-65535)", port);
    }
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *found;
    int error_code = getaddrinfo(host, port, &hints, &found);
    if (error_code != 0) {
        fprintf(stderr, "%s: getaddrinfo %s: %s\n", lab_program(), host, gai_strerror(error_code));
        exit(1);
    }
    int loopback = 0;
    if (found->ai_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)found->ai_addr;
        loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    } else if (found->ai_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)found->ai_addr;
        loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
    }
    memcpy(address, found->ai_addr, found->ai_addrlen);
    *length = (socklen_t)found->ai_addrlen;
    freeaddrinfo(found);
    if (!loopback) {
        lab_usage_error("refusing an address that is not loopback (127.0.0.0/8 or ::1)", host);
    }
}

void bench_allow_descriptors(long needed)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= (rlim_t)needed) {
        return;
    }
    if (limit.rlim_max < (rlim_t)needed) {
        fprintf(stderr,
                "%s: %ld connections need %ld descriptors; the hard limit is %lu "
                "(ulimit -Hn)\n",
                lab_program(), needed - 16, needed, (unsigned long)limit.rlim_max);
        exit(1);
    }
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        lab_die("setrlimit RLIMIT_NOFILE", NULL, errno);
    }
}

int64_t bench_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

int64_t bench_seconds_to_ns(double seconds)
{
    return (int64_t)(seconds * 1e9);
}
