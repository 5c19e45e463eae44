/*
 * adler_bench.c - what lesson 15's checksum costs: common/checksum.c's lab_adler32 beside the
 * plain byte-at-a-time Adler-32 of RFC 1950 (two sums, a modulo after each byte) and the
 * usual faster byte loop (the modulo once per 5,552 bytes, as late as the sums stay below
 * 2^32), on the same pseudo-random bytes. All must give the same sum; each is timed on a buffer
 * that stays in cache (BUFFER-KB, default 128: one write of lesson 15) summed again and again, and
 * the fastest of ROUNDS passes counts.
 *
 * Run:    build-bench/tests/bench/adler_bench [MEGABYTES [BUFFER-KB [ROUNDS]]]
 *         (default 1024 128 3): one JSON line on stdout.
 */
#include "lab.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ADLER_MODULUS 65521u

/* RFC 1950's sample code, as a student would first write it. */
static unsigned long adler32_bytewise(unsigned long adler, const unsigned char *data, size_t size)
{
    unsigned long a = adler & 0xffff, b = (adler >> 16) & 0xffff;
    for (size_t i = 0; i < size; i++) {
        a = (a + data[i]) % ADLER_MODULUS;
        b = (b + a) % ADLER_MODULUS;
    }
    return b << 16 | a;
}

/* Byte at a time, the modulo deferred: each b += a still waits for the a before it. */
static unsigned long adler32_deferred(unsigned long adler, const unsigned char *data, size_t size)
{
    uint32_t a = adler & 0xffff, b = (adler >> 16) & 0xffff;
    while (size > 0) {
        size_t chunk = size < 5552 ? size : 5552;
        size -= chunk;
        while (chunk-- > 0) {
            a += *data++;
            b += a;
        }
        a %= ADLER_MODULUS;
        b %= ADLER_MODULUS;
    }
    return (unsigned long)b << 16 | a;
}

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static unsigned long run_lab(unsigned long adler, const unsigned char *data, size_t size)
{
    return lab_adler32(adler, data, size);
}

/* Sums the buffer until total bytes are done, ROUNDS times; returns the best MB/s (10^6). */
static double best_rate(unsigned long (*sum)(unsigned long, const unsigned char *, size_t),
                        const unsigned char *buffer, size_t size, unsigned long long total,
                        long rounds, unsigned long *result)
{
    double best = 0;
    for (long round = 0; round < rounds; round++) {
        unsigned long adler = 1;
        double started = now_seconds();
        for (unsigned long long done = 0; done < total; done += size) {
            adler = sum(adler, buffer, size);
        }
        double rate = (double)total / (now_seconds() - started) / 1e6;
        best = rate > best ? rate : best;
        *result = adler;
    }
    return best;
}

int main(int argc, char **argv)
{
    lab_startup("adler_bench");
    long megabytes = 1024, buffer_kb = 128, rounds = 3;
    if ((argc > 1 && lab_parse_count(argv[1], 100000, &megabytes) != 0) ||
        (argc > 2 && lab_parse_count(argv[2], 1048576, &buffer_kb) != 0) ||
        (argc > 3 && lab_parse_count(argv[3], 100, &rounds) != 0) || megabytes == 0 ||
        buffer_kb == 0 || rounds == 0) {
        fprintf(stderr, "usage: adler_bench [MEGABYTES [BUFFER-KB [ROUNDS]]]\n");
        return 2;
    }
    size_t size = (size_t)buffer_kb * 1024;
    unsigned long long total = (unsigned long long)megabytes * 1000000ULL;
    total -= total % size; /* whole buffers, so both sums cover the same bytes */
    if (total == 0) {
        total = size;
    }
    unsigned char *buffer = malloc(size);
    if (buffer == NULL) {
        fprintf(stderr, "adler_bench: out of memory\n");
        return 1;
    }
    uint64_t state = 0x9e3779b97f4a7c15ULL; /* xorshift64, as lesson 15's client */
    for (size_t at = 0; at < size; at++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        buffer[at] = (unsigned char)state;
    }
    unsigned long lab_sum = 0, byte_sum = 0, deferred_sum = 0;
    double lab_rate = best_rate(run_lab, buffer, size, total, rounds, &lab_sum);
    double byte_rate = best_rate(adler32_bytewise, buffer, size, total, rounds, &byte_sum);
    double deferred_rate = best_rate(adler32_deferred, buffer, size, total, rounds, &deferred_sum);
    int same = lab_sum == byte_sum && lab_sum == deferred_sum;
    printf("{\"bytes\": %llu, \"buffer_bytes\": %zu, \"rounds\": %ld, "
           "\"lab_adler32_mb_per_s\": %.1f, \"bytewise_mb_per_s\": %.1f, "
           "\"deferred_modulo_mb_per_s\": %.1f, \"speedup\": %.2f, "
           "\"speedup_over_deferred\": %.2f, \"same_sum\": %s, \"adler32\": \"%08lx\"}\n",
           total, size, rounds, lab_rate, byte_rate, deferred_rate, lab_rate / byte_rate,
           lab_rate / deferred_rate, same ? "true" : "false", lab_sum);
    free(buffer);
    return same ? 0 : 1;
}
