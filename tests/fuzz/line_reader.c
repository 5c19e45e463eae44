/*
 * line_reader.c - a libFuzzer target for the line reader of common/stream.c (lesson 02), the
 * code every server runs on bytes from the network.
 *
 * Not only "no crash": the fuzzer's bytes are fed to a reader in chunks whose sizes come from
 * the input itself (as recv() would split them), every line taken out is compared with what a
 * plain model says the stream holds: each line ended by "\n" comes out whole (one "\r" before
 * the "\n" dropped) if it has at most LAB_LINE_MAX bytes, as exactly one LAB_LINE_TOO_LONG if
 * it has more; a last line without its "\n" comes out as nothing, or as one LAB_LINE_TOO_LONG
 * once it has filled the reader. Any difference aborts, and libFuzzer keeps the input.
 *
 * Build and run: cmake --preset fuzz && cmake --build --preset fuzz
 *                python3 tests/fuzz/run.py --build-dir build-fuzz --seconds 60
 * (tests/README.md, "Fuzzing": the long runs, and the planted bug this must find.)
 */
#include "lab.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The model's next expected event, read from the input at *position; returns 0 at the end. */
static int expected_next(const uint8_t *data, size_t size, size_t *position, int *too_long,
                         const uint8_t **line, size_t *length)
{
    while (*position < size) {
        const uint8_t *start = data + *position;
        const uint8_t *newline = memchr(start, '\n', size - *position);
        if (newline == NULL) {
            *position = size;
            if ((size_t)(data + size - start) >= sizeof((struct lab_line_reader *)0)->bytes) {
                *too_long = 1; /* it filled the reader before its end came */
                return 1;
            }
            return 0; /* half a line at the end: never a line */
        }
        *position += (size_t)(newline - start) + 1;
        *length = (size_t)(newline - start);
        if (*length > 0 && start[*length - 1] == '\r') {
            (*length)--;
        }
        *line = start;
        *too_long = *length > LAB_LINE_MAX;
        return 1;
    }
    return 0;
}

static void fail(const char *what, size_t offset)
{
    fprintf(stderr, "line reader: %s (input byte %zu)\n", what, offset);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t chunk = (size_t)data[0] % 64 + 1; /* how recv() splits the stream this time */
    data++;
    size--;
    struct lab_line_reader reader;
    lab_line_reader_init(&reader);
    char line[LAB_LINE_MAX + 1];
    size_t fed = 0, expected_at = 0, length;
    while (fed < size) {
        size_t room = sizeof reader.bytes - reader.used;
        size_t count = size - fed < chunk ? size - fed : chunk;
        count = count < room ? count : room; /* lab_line_fill() never overfills */
        memcpy(reader.bytes + reader.used, data + fed, count);
        reader.used += count;
        fed += count;
        enum lab_line_status status;
        while ((status = lab_line_take(&reader, line, &length)) != LAB_LINE_NEED_MORE) {
            int too_long;
            const uint8_t *model_line;
            size_t model_length;
            if (!expected_next(data, size, &expected_at, &too_long, &model_line, &model_length)) {
                fail("a line came out that the stream does not hold", fed);
            }
            if (too_long != (status == LAB_LINE_TOO_LONG)) {
                fail(too_long ? "an over-long line came out as a line"
                              : "a line was cut as too long",
                     fed);
            }
            if (!too_long && (length != model_length || memcmp(line, model_line, length) != 0)) {
                fail("a line came out different from the one sent", fed);
            }
        }
        if (reader.used >= sizeof reader.bytes && !reader.discarding) {
            fail("the reader is full and asks for more", fed);
        }
    }
    int too_long;
    const uint8_t *model_line;
    size_t model_length;
    size_t model_at = expected_at;
    if (expected_next(data, size, &model_at, &too_long, &model_line, &model_length)) {
        fail("a line the stream holds never came out", fed);
    }
    return 0;
}
