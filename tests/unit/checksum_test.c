/*
 * checksum_test.c - common/checksum.c's Adler-32, lab_adler32() (16 lanes abreast) and
 * lab_adler32_combine(), against a byte-at-a-time Adler-32 written here:
 *   - known values: "" is 1, "a" is 0x00620062, "abc" is 0x024D0127, "Wikipedia" is
 *     0x11E60398; a sum continued over no bytes is unchanged;
 *   - random data of random lengths 0-70,000, from random starting sums and at every
 *     alignment, whole and fed in random pieces (runs longer than the 4,096 blocks the lanes
 *     sum at once, and tails of 0-15 bytes);
 *   - 1 MiB of 0xFF, the largest bytes in the longest runs: the lanes' 32-bit running sums are
 *     closest to overflowing (with runs of 8,192 blocks they would);
 *   - lab_adler32_combine() of the two parts equals the sum of the whole, for many split
 *     points of 70,000 bytes (second parts longer than the modulus, 65,521, among them).
 * Run:    build/tests/checksum_test (CTest: ctest --preset default -R checksum)
 * Portable: it runs under Wine as well (the windows preset).
 */
#include "lab.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOST 70000           /* the longest random data */
#define ALL_FF (1024 * 1024) /* 1 MiB, lesson 15's largest frame */

static int checks, failures;

static void check(int condition, const char *claim)
{
    checks++;
    if (!condition) {
        failures++;
        printf("FAILED: %s\n", claim);
    }
}

static void check_value(unsigned long got, unsigned long expected, const char *claim)
{
    char line[200];
    snprintf(line, sizeof line, "%s (%08lx, expected %08lx)", claim, got, expected);
    check(got == expected, line);
}

/* Adler-32 as RFC 1950 defines it, one byte at a time. */
static unsigned long reference_adler32(unsigned long adler, const unsigned char *bytes, size_t size)
{
    unsigned long a = adler & 0xffff, b = (adler >> 16) & 0xffff;
    for (size_t i = 0; i < size; i++) {
        a = (a + bytes[i]) % 65521;
        b = (b + a) % 65521;
    }
    return b << 16 | a;
}

static uint32_t random_state = 2463534242u;

static uint32_t random_next(void) /* xorshift32: the same numbers on every platform */
{
    random_state ^= random_state << 13;
    random_state ^= random_state >> 17;
    random_state ^= random_state << 5;
    return random_state;
}

/* A valid Adler-32 value to start from: a and b each below the modulus. */
static unsigned long random_adler(void)
{
    return (unsigned long)(random_next() % 65521) << 16 | random_next() % 65521;
}

static void known_values(void)
{
    check_value(lab_adler32(1, "", 0), 1, "Adler-32 of \"\" is 1");
    check_value(lab_adler32(1, "a", 1), 0x00620062, "Adler-32 of \"a\"");
    check_value(lab_adler32(1, "abc", 3), 0x024D0127, "Adler-32 of \"abc\"");
    check_value(lab_adler32(1, "Wikipedia", 9), 0x11E60398, "Adler-32 of \"Wikipedia\"");
    check_value(lab_adler32(0x11E60398, "x", 0), 0x11E60398, "a sum continued over no bytes");
    const char *text = "Wikipedia is a free online encyclopedia"; /* 39 bytes: 2 lanes' runs */
    check_value(lab_adler32(1, text, strlen(text)),
                reference_adler32(1, (const unsigned char *)text, strlen(text)),
                "Adler-32 of a 39-byte sentence");
}

static void random_lengths(unsigned char *data)
{
    for (size_t i = 0; i < MOST + 16; i++) {
        data[i] = (unsigned char)random_next();
    }
    int wrong_whole = 0, wrong_pieces = 0, rounds = 300;
    for (int round = 0; round < rounds; round++) {
        size_t size = random_next() % (MOST + 1);
        if (round < 40) {
            size = (size_t)round; /* every length of the tail loop and the first runs */
        }
        const unsigned char *start = data + random_next() % 16; /* every alignment */
        unsigned long from = round % 2 == 0 ? 1 : random_adler();
        unsigned long expected = reference_adler32(from, start, size);
        wrong_whole += lab_adler32(from, start, size) != expected;
        unsigned long adler = from;
        for (size_t at = 0; at < size;) {
            size_t piece = random_next() % (round % 3 == 0 ? 40 : 20000) + 1;
            piece = piece < size - at ? piece : size - at;
            adler = lab_adler32(adler, start + at, piece);
            at += piece;
        }
        wrong_pieces += adler != expected;
    }
    char claim[120];
    snprintf(claim, sizeof claim, "random data, 300 lengths 0-70000: %d whole sums wrong",
             wrong_whole);
    check(wrong_whole == 0, claim);
    snprintf(claim, sizeof claim, "the same fed in random pieces: %d sums wrong", wrong_pieces);
    check(wrong_pieces == 0, claim);
}

static void all_ff(unsigned char *data)
{
    memset(data, 0xff, ALL_FF);
    unsigned long expected = reference_adler32(1, data, ALL_FF);
    check_value(lab_adler32(1, data, ALL_FF), expected, "1 MiB of 0xFF");
    unsigned long from = 0xFFF0FFF0; /* a and b both 65520, the largest they can be */
    check_value(lab_adler32(from, data, ALL_FF), reference_adler32(from, data, ALL_FF),
                "1 MiB of 0xFF from the largest a and b");
    check_value(lab_adler32(1, data, ALL_FF - 5), reference_adler32(1, data, ALL_FF - 5),
                "1 MiB - 5 bytes of 0xFF");
}

static void combine(unsigned char *data)
{
    for (size_t i = 0; i < MOST; i++) {
        data[i] = (unsigned char)random_next();
    }
    unsigned long whole = reference_adler32(1, data, MOST);
    int wrong = 0, splits = 0;
    for (size_t split = 0; split <= MOST; split += split < 100 ? 1 : 997) {
        unsigned long first = lab_adler32(1, data, split);
        unsigned long second = lab_adler32(1, data + split, MOST - split);
        wrong += lab_adler32_combine(first, second, MOST - split) != whole;
        splits++;
    }
    size_t edges[] = {MOST - 65521, MOST - 65520, MOST - 65522, MOST - 1, MOST};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        unsigned long first = lab_adler32(1, data, edges[i]);
        unsigned long second = lab_adler32(1, data + edges[i], MOST - edges[i]);
        wrong += lab_adler32_combine(first, second, MOST - edges[i]) != whole;
        splits++;
    }
    char claim[120];
    snprintf(claim, sizeof claim, "combine of two parts is the whole: %d of %d splits wrong", wrong,
             splits);
    check(wrong == 0, claim);
    unsigned long from = random_adler();
    check_value(lab_adler32_combine(from, lab_adler32(1, data, MOST), MOST),
                reference_adler32(from, data, MOST), "combine from a random first sum");
    check_value(lab_adler32_combine(from, 1, 0), from, "combine with an empty second part");
}

int main(void)
{
    unsigned char *data = malloc(ALL_FF);
    if (data == NULL) {
        printf("FAILED: no memory\n");
        return 1;
    }
    known_values();
    random_lengths(data);
    all_ff(data);
    combine(data);
    free(data);
    printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
