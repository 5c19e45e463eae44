/*
 * frame_decoder.c - a libFuzzer target for lesson 15's frame decoder, frame_take()
 * (lessons/15-bulk-transfer/server.c, included whole, its main() renamed), and for the
 * Adler-32 of common/checksum.c that the server runs on every payload piece.
 *
 * The input's first byte chooses how the rest, a stream of frames, is cut (as recv() would
 * cut it); the stream is decoded
 *   - in one piece,
 *   - cut in two at every offset up to the last byte read: each decoded from the last
 *     frame_take() call of the one-piece decoding that began before the cut, in that call's
 *     state, until it is back in step with the one-piece decoding (at an offset where one of
 *     its calls began, in that call's state: from there on the calls are the same), which
 *     keeps it linear, not quadratic, in the stream's length; streams of up to SPLIT_ALL
 *     bytes are also decoded whole for every cut,
 *   - in chunks whose sizes come from the first byte (all of one size 1-64, or varying 1-8),
 * each chunk in a buffer of its own, and every decoding's events must be the same as those
 * of a plain model parser (4 bytes big-endian, over FRAME_LIMIT: too long and stop; 0: end
 * of transfer; else the payload, as much of it as the stream holds): the frames' lengths, the
 * payload of each frame as one run of the stream's bytes, the ends of transfer, a too-long
 * frame's length and nothing after it, and where the stream ends - in a header (how many of
 * its bytes) or in a payload (how many bytes still to come). A frame announced up to 1 MiB
 * in an input of a few KB simply stays unfinished: both must agree on that too.
 * Every call: frame_take() takes at least 1 byte and at most what it was given; a payload
 * piece is the bytes it took (within the given buffer, none past it: ASan sees the rest);
 * FRAME_NOTHING only when it took all it was given into an unfinished header. In the
 * one-piece and chunked decodings, lab_adler32() fed piece by piece, per frame and per
 * transfer, and lab_adler32_combine() of the frames' sums, must equal a byte-at-a-time
 * Adler-32 written here. Any difference aborts, and libFuzzer keeps the input.
 *
 * Build and run: cmake --preset fuzz && cmake --build --preset fuzz
 *                python3 tests/fuzz/run.py --build-dir build-fuzz --seconds 60
 * (tests/README.md, "Fuzzing": the long runs, and the bugs planted to check it finds them.)
 */
#define main bulk_main
int bulk_main(int argc, char **argv);
#include "../../lessons/15-bulk-transfer/server.c"
#undef main

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SPLIT_ALL 64 /* streams up to this long are also cut in two and decoded whole */

struct event {
    enum frame_event kind; /* FRAME_BEGINS, FRAME_PAYLOAD, FRAME_ENDS_TRANSFER, FRAME_TOO_LONG */
    uint32_t length;       /* FRAME_BEGINS, FRAME_TOO_LONG */
    size_t offset, size;   /* FRAME_PAYLOAD: the run of the stream's bytes it is */
};

struct events {
    struct event *list;
    size_t count, room;
    size_t header_have;    /* at the end: bytes of an unfinished header */
    uint32_t payload_left; /* at the end: bytes of an unfinished payload still to come */
};

static void fail(const char *what, size_t offset)
{
    fprintf(stderr, "frame decoder: %s (stream byte %zu)\n", what, offset);
    abort();
}

static void add(struct events *events, enum frame_event kind, uint32_t length, size_t offset,
                size_t size)
{
    if (kind == FRAME_PAYLOAD && events->count > 0) {
        struct event *last = &events->list[events->count - 1];
        if (last->kind == FRAME_PAYLOAD && last->offset + last->size == offset) {
            last->size += size; /* one frame's payload in pieces: one run */
            return;
        }
    }
    if (events->count == events->room) {
        fail("more events than the stream can hold", offset);
    }
    events->list[events->count++] = (struct event){kind, length, offset, size};
}

/* The model: what the stream holds, read the plain way. */
static void model(const uint8_t *stream, size_t size, struct events *events)
{
    size_t at = 0;
    events->count = 0;
    events->header_have = 0;
    events->payload_left = 0;
    while (at < size) {
        if (size - at < 4) {
            events->header_have = size - at;
            return;
        }
        uint32_t length = (uint32_t)stream[at] << 24 | (uint32_t)stream[at + 1] << 16 |
                          (uint32_t)stream[at + 2] << 8 | stream[at + 3];
        at += 4;
        if (length > 1024UL * 1024) {
            add(events, FRAME_TOO_LONG, length, at, 0);
            return; /* the caller stops reading */
        }
        if (length == 0) {
            add(events, FRAME_ENDS_TRANSFER, 0, at, 0);
            continue;
        }
        add(events, FRAME_BEGINS, length, at, 0);
        size_t have = size - at < length ? size - at : length;
        if (have > 0) {
            add(events, FRAME_PAYLOAD, 0, at, have);
        }
        at += have;
        events->payload_left = length - (uint32_t)have;
    }
}

/* Adler-32 the way RFC 1950 says it, one byte at a time. */
static unsigned long reference_adler32(unsigned long adler, const uint8_t *bytes, size_t size)
{
    unsigned long a = adler & 0xffff, b = (adler >> 16) & 0xffff;
    for (size_t i = 0; i < size; i++) {
        a = (a + bytes[i]) % 65521;
        b = (b + a) % 65521;
    }
    return b << 16 | a;
}

/* The Adler-32 sums of one decoding, checked as each frame ends. */
struct sums {
    size_t frame_offset, frame_size;   /* the current frame's payload so far */
    unsigned long frame, transfer;     /* lab_adler32, piece by piece */
    unsigned long combined, reference; /* combine() of the frames; byte at a time */
};

static void frame_over(struct sums *sums, const uint8_t *stream)
{
    unsigned long expected = reference_adler32(1, stream + sums->frame_offset, sums->frame_size);
    if (sums->frame != expected) {
        fail("lab_adler32 piece by piece is not the frame's Adler-32", sums->frame_offset);
    }
    sums->reference =
        reference_adler32(sums->reference, stream + sums->frame_offset, sums->frame_size);
    sums->combined = lab_adler32_combine(sums->combined, sums->frame, sums->frame_size);
    if (sums->transfer != sums->reference || sums->combined != sums->reference) {
        fail("the transfer's Adler-32 (piece by piece, or combined) is wrong", sums->frame_offset);
    }
    sums->frame = 1;
    sums->frame_size = 0;
}

/* The one-piece decoding's calls: where each began, in what state, after how many events. */
struct call {
    size_t offset, events;
    struct frame_reader state;
};

struct trail {
    struct call *calls;
    size_t count, room;
    size_t *call_at;      /* [offset]: 1 + the call that began there, or 0 */
    size_t *last_call_at; /* [offset]: the last call that began at or before it */
};

/* One decoding under way. */
struct decoding {
    struct frame_reader reader;
    struct events *events;
    struct sums *sums;           /* the Adler-32 sums to check, or NULL */
    struct trail *record;        /* the calls to record (one piece), or NULL */
    const struct trail *against; /* stop as soon as it is back in step with these, or NULL */
    size_t cut;                  /* ... at or after this offset */
    int stopped;                 /* 1: at a frame too long; 2: back in step */
    size_t in_step_call;         /* 2: with this call of against */
};

static int same_state(const struct frame_reader *one, const struct frame_reader *other)
{
    return one->header_have == other->header_have && one->payload_left == other->payload_left &&
           one->header_have <= sizeof one->header &&
           memcmp(one->header, other->header, one->header_have) == 0;
}

/* Feeds stream[start, end), which buffer holds, to the decoder, checking every call. */
static void feed(struct decoding *run, const uint8_t *stream, const unsigned char *buffer,
                 size_t start, size_t end)
{
    struct frame_reader *reader = &run->reader;
    size_t length = end - start;
    for (size_t used = 0; used < length && !run->stopped;) {
        struct frame_piece piece;
        size_t offset = start + used;
        if (run->record != NULL) {
            struct trail *trail = run->record;
            if (trail->count == trail->room) {
                fail("more calls than the stream can take", offset);
            }
            trail->calls[trail->count] = (struct call){offset, run->events->count, *reader};
            trail->call_at[offset] = ++trail->count;
        }
        size_t taken = frame_take(reader, buffer + used, length - used, &piece);
        if (taken == 0 || taken > length - used) {
            fail(taken == 0 ? "frame_take took nothing" : "frame_take took more than given",
                 offset);
        }
        used += taken;
        switch (piece.event) {
        case FRAME_NOTHING:
            if (used != length || reader->header_have == 0 || reader->header_have >= 4) {
                fail("FRAME_NOTHING but not all taken into an unfinished header", offset);
            }
            break;
        case FRAME_PAYLOAD:
            if (piece.data < buffer || piece.data >= buffer + length ||
                piece.size > (size_t)(buffer + length - piece.data)) {
                fail("a payload piece outside the given data", offset);
            }
            if (piece.data != buffer + used - taken || piece.size != taken) {
                fail("a payload piece is not the bytes frame_take took", offset);
            }
            add(run->events, FRAME_PAYLOAD, 0, offset, taken);
            if (run->sums != NULL) {
                struct sums *sums = run->sums;
                sums->frame = lab_adler32(sums->frame, piece.data, piece.size);
                sums->transfer = lab_adler32(sums->transfer, piece.data, piece.size);
                sums->frame_size += piece.size;
            }
            break;
        case FRAME_BEGINS:
        case FRAME_ENDS_TRANSFER:
        case FRAME_TOO_LONG:
            if (taken > 4 || reader->header_have != 0) {
                fail("a header event after taking more than a header", offset);
            }
            if (run->sums != NULL) {
                struct sums *sums = run->sums;
                frame_over(sums, stream);
                sums->frame_offset = start + used;
                if (piece.event == FRAME_ENDS_TRANSFER) {
                    sums->transfer = sums->combined = sums->reference = 1;
                }
            }
            add(run->events, piece.event, piece.event == FRAME_ENDS_TRANSFER ? 0 : piece.length,
                start + used, 0);
            if (piece.event == FRAME_TOO_LONG) {
                run->stopped = 1; /* the caller stops here */
            }
            break;
        default:
            fail("an event that does not exist", offset);
        }
        size_t at = start + used;
        if (run->against != NULL && !run->stopped && at >= run->cut &&
            run->against->call_at[at] != 0 &&
            same_state(reader, &run->against->calls[run->against->call_at[at] - 1].state)) {
            run->stopped = 2; /* from here on the same calls as in one piece, so the same */
            run->in_step_call = run->against->call_at[at] - 1;
        }
    }
}

/* Decodes the stream cut before each of cuts[0, cut_count) (ascending, inside the stream),
 * each chunk copied to a buffer of its own. Checks every call, the sums if asked. */
static void decode(const uint8_t *stream, size_t size, const size_t *cuts, size_t cut_count,
                   int check_sums, struct trail *record, struct events *events)
{
    struct sums sums = {0, 0, 1, 1, 1, 1};
    struct decoding run = {{{0}, 0, 0}, events, check_sums ? &sums : NULL, record, NULL, 0, 0, 0};
    events->count = 0;
    size_t start = 0;
    for (size_t chunk = 0; chunk <= cut_count && !run.stopped; chunk++) {
        size_t end = chunk < cut_count ? cuts[chunk] : size;
        unsigned char *buffer = malloc(end > start ? end - start : 1);
        if (buffer == NULL) {
            fail("no memory", start);
        }
        memcpy(buffer, stream + start, end - start);
        feed(&run, stream, buffer, start, end);
        free(buffer);
        start = end;
    }
    if (check_sums) {
        frame_over(&sums, stream); /* the last frame: its payload so far */
    }
    events->header_have = run.reader.header_have;
    events->payload_left = run.reader.payload_left;
}

static void compare(const struct events *decoded, const struct events *expected, const char *how)
{
    size_t count = decoded->count < expected->count ? decoded->count : expected->count;
    for (size_t i = 0; i < count; i++) {
        const struct event *d = &decoded->list[i], *e = &expected->list[i];
        if (d->kind != e->kind || d->length != e->length || d->offset != e->offset ||
            d->size != e->size) {
            fprintf(stderr,
                    "frame decoder: %s: event %zu is %d length %lu at %zu size %zu, "
                    "the model says %d length %lu at %zu size %zu\n",
                    how, i, (int)d->kind, (unsigned long)d->length, d->offset, d->size,
                    (int)e->kind, (unsigned long)e->length, e->offset, e->size);
            fail("the decoder's events differ from the model's", e->offset);
        }
    }
    if (decoded->count != expected->count) {
        fprintf(stderr, "frame decoder: %s: %zu events, the model says %zu\n", how, decoded->count,
                expected->count);
        fail("the decoder's events differ from the model's in number", 0);
    }
    if (decoded->header_have != expected->header_have ||
        decoded->payload_left != expected->payload_left) {
        fprintf(stderr,
                "frame decoder: %s: ends with %zu header bytes, %lu payload to come; "
                "the model says %zu, %lu\n",
                how, decoded->header_have, (unsigned long)decoded->payload_left,
                expected->header_have, (unsigned long)expected->payload_left);
        fail("the decoder ends the stream in another state than the model", 0);
    }
}

/* The stream cut in two at cut, decoded only as far as it differs from the one-piece
 * decoding (whole, whose calls are in trail, already compared with the model): from the
 * last call that began before the cut, in that call's state, until after the cut the
 * decoder is back in step - at an offset where a one-piece call began, in that call's
 * state. Its events on the way must be the one-piece decoding's between the same calls. */
static void check_cut(const uint8_t *stream, size_t size, const struct trail *trail,
                      const struct events *whole, size_t cut, struct events *window)
{
    const struct call *from = &trail->calls[trail->last_call_at[cut - 1]];
    struct decoding run = {from->state, window, NULL, NULL, trail, cut, 0, 0};
    window->count = 0;
    /* The bytes before the cut in a buffer of their own (ASan sees a read past them) when
     * they are few - a header's; the payload path reads none. After the cut: the input's
     * own buffer, which ends where the stream does. */
    unsigned char *before = NULL;
    if (cut - from->offset <= 64) {
        before = malloc(cut - from->offset);
        if (before == NULL) {
            fail("no memory", cut);
        }
        memcpy(before, stream + from->offset, cut - from->offset);
    }
    feed(&run, stream, before != NULL ? before : stream + from->offset, from->offset, cut);
    free(before);
    if (!run.stopped) {
        feed(&run, stream, stream + cut, cut, size);
    }
    size_t last = run.stopped == 2 ? trail->calls[run.in_step_call].events : whole->count;
    struct events expected = {whole->list + from->events, last - from->events, 0,
                              whole->header_have, whole->payload_left};
    if (run.stopped == 2) { /* the end state is the one-piece call's, already compared */
        window->header_have = expected.header_have;
        window->payload_left = expected.payload_left;
    } else {
        window->header_have = run.reader.header_have;
        window->payload_left = run.reader.payload_left;
    }
    compare(window, &expected, "cut in two");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    unsigned cutting = data[0]; /* how the chunked decoding cuts the stream */
    const uint8_t *stream = data + 1;
    size--;
    size_t room = size / 4 * 2 + 2; /* at most a header event and a payload run per 4 bytes */
    struct event *lists = malloc(2 * room * sizeof *lists);
    size_t *cuts = malloc((size + 1) * sizeof *cuts);
    struct trail trail = {malloc((size / 2 + 4) * sizeof(struct call)), 0, size / 2 + 4,
                          calloc(size + 1, sizeof(size_t)), malloc((size + 1) * sizeof(size_t))};
    if (lists == NULL || cuts == NULL || trail.calls == NULL || trail.call_at == NULL ||
        trail.last_call_at == NULL) {
        fail("no memory", 0);
    }
    struct events expected = {lists, 0, room, 0, 0}, decoded = {lists + room, 0, room, 0, 0};
    model(stream, size, &expected);

    decode(stream, size, NULL, 0, 1, &trail, &decoded); /* in one piece */
    compare(&decoded, &expected, "in one piece");

    for (size_t at = 0, last = 0; at <= size; at++) { /* in two, at every offset */
        last = trail.call_at[at] != 0 ? trail.call_at[at] - 1 : last;
        trail.last_call_at[at] = last;
    }
    struct events window = {lists + room, 0, room, 0, 0};
    size_t read = expected.count > 0 && expected.list[expected.count - 1].kind == FRAME_TOO_LONG
                      ? expected.list[expected.count - 1].offset
                      : size; /* cut after a frame too long: the same as not cut */
    if (trail.count > 0) {
        for (size_t cut = 1; cut < read; cut++) {
            check_cut(stream, size, &trail, &expected, cut, &window);
        }
    }
    if (size <= SPLIT_ALL) { /* short: in two at every offset, each decoded whole */
        for (size_t cut = 1; cut < size; cut++) {
            decode(stream, size, &cut, 1, 0, NULL, &decoded);
            compare(&decoded, &expected, "cut in two, decoded whole");
        }
    }

    size_t cut_count = 0; /* in chunks: 1-64 bytes each, or 1-8 varying */
    uint32_t state = cutting * 2654435761u + 1;
    for (size_t at = 0;;) {
        size_t chunk;
        if (cutting < 128) {
            chunk = cutting % 64 + 1;
        } else {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            chunk = state % 8 + 1;
        }
        at += chunk;
        if (at >= size) {
            break;
        }
        cuts[cut_count++] = at;
    }
    decode(stream, size, cuts, cut_count, 1, NULL, &decoded);
    compare(&decoded, &expected, "in chunks");

    free(trail.last_call_at);
    free(trail.call_at);
    free(trail.calls);
    free(cuts);
    free(lists);
    return 0;
}
