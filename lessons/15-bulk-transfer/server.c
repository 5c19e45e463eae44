/*
 * Lesson 15 - bulk transfer: a server that receives binary frames as fast as the wire brings
 * them, and proves it got every byte.
 *
 * TCP carries bytes, not messages (lesson 02): a binary protocol marks where each message
 * ends with a length in front of it. Here a frame is a 4-byte length in network byte order,
 * then that many bytes of payload, at most 1 MiB. A frame of length 0 ends a transfer; the
 * server then answers with one frame of 12 bytes: the payload bytes it received (8 bytes)
 * and their Adler-32 (4 bytes), both in network byte order, and prints the same with MB/s.
 * A connection may carry several transfers. A frame over the limit is refused: an error on
 * stderr, and the connection is closed. One client at a time, as in lesson 14.
 *
 * One recv() asks for up to 1 MiB and takes whatever has arrived (on loopback often
 * ~150 KB); the frame decoder below cuts those bytes into headers and payload wherever
 * recv() happened to cut them.
 *
 * Run:    build/lessons/15-bulk-transfer/server [PORT [BIND-ADDRESS [SAVE-TO]]]
 *         (default 5050 127.0.0.1; SAVE-TO: a file that gets each connection's payload)
 * Before: 14-closing.    Next: 16-dead-peers.
 */
#include "lab.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#define FRAME_LIMIT (1024UL * 1024) /* the largest payload a frame may announce: 1 MiB */
#define RECEIVE_SIZE (1024 * 1024)  /* what one recv() asks for */
#define ANSWER_SIZE 12              /* payload of the answer: 8-byte count, 4-byte Adler-32 */

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS [SAVE-TO]]]\n"
           "Listens on BIND-ADDRESS:PORT (default %s:%s; 0: any free port) and receives\n"
           "frames (a 4-byte length in network byte order, then up to %lu bytes), one client\n"
           "at a time. A frame of length 0 ends a transfer: the answer is a 12-byte frame\n"
           "with the payload bytes received (8 bytes) and their Adler-32 (4 bytes).\n"
           "SAVE-TO names a file that gets each connection's payload (replaced each time).\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT, FRAME_LIMIT);
}

/* ---- the frame decoder: bytes in, however recv() cut them; frames out ---------------- */

struct frame_reader {
    unsigned char header[4]; /* the length being read, in network byte order */
    size_t header_have;      /* bytes of it received so far */
    uint32_t payload_left;   /* bytes of the current frame's payload still to come */
};

enum frame_event {
    FRAME_NOTHING,       /* the bytes were part of a header: nothing to act on yet */
    FRAME_BEGINS,        /* a header is whole: piece->length bytes of payload follow */
    FRAME_PAYLOAD,       /* piece->data and piece->size: payload, in order */
    FRAME_ENDS_TRANSFER, /* a frame of length 0 */
    FRAME_TOO_LONG,      /* a header announced piece->length > FRAME_LIMIT: stop reading */
};

struct frame_piece {
    enum frame_event event;
    uint32_t length;           /* FRAME_BEGINS, FRAME_TOO_LONG */
    const unsigned char *data; /* FRAME_PAYLOAD */
    size_t size;               /* FRAME_PAYLOAD */
};

/* Takes what it can of data[0, size) - payload, or header bytes up to a whole header - and
 * says what it was in *piece. Returns how many bytes it took (0 only when size is 0). */
static size_t frame_take(struct frame_reader *reader, const unsigned char *data, size_t size,
                         struct frame_piece *piece)
{
    piece->event = FRAME_NOTHING;
    if (reader->payload_left > 0) {
        size_t taken = size < reader->payload_left ? size : reader->payload_left;
        reader->payload_left -= (uint32_t)taken;
        piece->event = FRAME_PAYLOAD;
        piece->data = data;
        piece->size = taken;
        return taken;
    }
    size_t taken = sizeof reader->header - reader->header_have;
    taken = size < taken ? size : taken;
    memcpy(reader->header + reader->header_have, data, taken);
    reader->header_have += taken;
    if (reader->header_have < sizeof reader->header) {
        return taken; /* a header cut by recv(): the rest comes with the next bytes */
    }
    uint32_t length;
    memcpy(&length, reader->header, sizeof length); /* memcpy: header need not be aligned */
    piece->length = ntohl(length);
    reader->header_have = 0;
    if (piece->length > FRAME_LIMIT) {
        piece->event = FRAME_TOO_LONG; /* e.g. "GET " from a web browser: 1,195,725,856 */
    } else if (piece->length == 0) {
        piece->event = FRAME_ENDS_TRANSFER;
    } else {
        piece->event = FRAME_BEGINS;
        reader->payload_left = piece->length;
    }
    return taken;
}

/* ---- one connection --------------------------------------------------------------------- */

struct transfer {
    unsigned long long bytes; /* payload received in this transfer */
    unsigned long frames;
    unsigned long adler;  /* Adler-32 of the payload so far */
    long long started_ms; /* when its first frame began; 0: not yet */
};

static void transfer_start(struct transfer *transfer)
{
    transfer->bytes = 0;
    transfer->frames = 0;
    transfer->adler = 1; /* Adler-32 of no bytes */
    transfer->started_ms = 0;
}

/* Sends the answer frame and prints what the transfer brought. Returns 0, or -1 (warned). */
static int answer(lab_socket s, const char *peer, const struct transfer *transfer)
{
    unsigned char frame[4 + ANSWER_SIZE];
    uint32_t words[4] = {htonl(ANSWER_SIZE), htonl((uint32_t)(transfer->bytes >> 32)),
                         htonl((uint32_t)transfer->bytes), htonl((uint32_t)transfer->adler)};
    memcpy(frame, words, sizeof frame); /* length, count high half, low half, Adler-32 */
    if (lab_send_all(s, frame, sizeof frame) != 0) {
        lab_warn("send", peer, lab_last_error());
        return -1;
    }
    double seconds = transfer->frames > 0 /* else no clock started: an empty transfer */
                         ? (double)(lab_now_ms() - transfer->started_ms) / 1000.0
                         : 0.0;
    printf("received %llu bytes in %lu frames, adler32 %08lx, %.3f s, %.1f MB/s\n", transfer->bytes,
           transfer->frames, transfer->adler, seconds,
           seconds > 0 ? (double)transfer->bytes / seconds / 1e6 : 0.0);
    return 0;
}

/* Acts on one piece of the stream. Returns 0 to read on, -1 to close (said why). */
static int act_on(lab_socket s, const char *peer, const struct frame_piece *piece,
                  struct transfer *transfer, FILE *save)
{
    switch (piece->event) {
    case FRAME_BEGINS:
        if (transfer->frames++ == 0) {
            transfer->started_ms = lab_now_ms();
        }
        return 0;
    case FRAME_PAYLOAD:
        transfer->bytes += piece->size;
        transfer->adler = lab_adler32(transfer->adler, piece->data, piece->size);
        if (save != NULL && fwrite(piece->data, 1, piece->size, save) != piece->size) {
            fprintf(stderr, "%s: write SAVE-TO: %s\n", lab_program(), strerror(errno));
            return -1;
        }
        return 0;
    case FRAME_ENDS_TRANSFER:
        if (answer(s, peer, transfer) != 0) {
            return -1;
        }
        transfer_start(transfer);
        return 0;
    case FRAME_TOO_LONG:
        fprintf(stderr, "%s: frame %s: length %lu is over the limit of %lu bytes\n", lab_program(),
                peer, (unsigned long)piece->length, FRAME_LIMIT);
        return -1;
    default:
        return 0;
    }
}

static void serve(lab_socket s, const char *peer, FILE *save)
{
    static unsigned char received[RECEIVE_SIZE]; /* one client at a time: one buffer */
    struct frame_reader reader = {{0}, 0, 0};
    struct transfer transfer;
    transfer_start(&transfer);
    for (;;) {
        lab_io_size count = recv(s, (char *)received, RECEIVE_SIZE, 0);
        if (count == 0) {
            if (transfer.bytes > 0 || reader.header_have > 0 || reader.payload_left > 0) {
                printf("end of file in the middle of a transfer: %llu bytes not answered\n",
                       transfer.bytes);
            }
            return;
        }
        if (count < 0) {
            if (!lab_error_is_interrupt(lab_last_error())) {
                lab_warn("recv", peer, lab_last_error());
                return;
            }
            continue;
        }
        for (size_t used = 0; used < (size_t)count;) {
            struct frame_piece piece;
            used += frame_take(&reader, received + used, (size_t)count - used, &piece);
            if (act_on(s, peer, &piece, &transfer, save) != 0) {
                return; /* closing with input unread resets the connection (lesson 14) */
            }
        }
    }
}

int main(int argc, char **argv)
{
    lab_startup("server");
    if (lab_wants_help(argc, argv)) {
        print_usage();
        return 0;
    }
    const char *port;
    const char *host;
    lab_server_arguments(argc, argv, 1, &port, &host);
    const char *save_to = argc > 3 ? argv[3] : NULL;
    FILE *save = save_to != NULL ? fopen(save_to, "wb") : NULL; /* fail now, not later */
    if (save_to != NULL && save == NULL) {
        fprintf(stderr, "%s: open %s: %s\n", lab_program(), save_to, strerror(errno));
        return 1;
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* an answer to a client that is gone: EPIPE, not death */
#endif
    lab_socket listener = lab_listen(host, port);
    lab_announce_listening(listener);
    for (;;) {
        char peer[LAB_ADDRESS_TEXT];
        lab_socket client = lab_accept(listener, peer, sizeof peer);
        if (!lab_socket_ok(client)) {
            continue; /* lab_accept warned, and paused if out of descriptors */
        }
        printf("client connected from %s\n", peer);
        if (save == NULL && save_to != NULL && (save = fopen(save_to, "wb")) == NULL) {
            fprintf(stderr, "%s: open %s: %s\n", lab_program(), save_to, strerror(errno));
        }
        serve(client, peer, save);
        if (save != NULL && fclose(save) != 0) {
            fprintf(stderr, "%s: close %s: %s\n", lab_program(), save_to, strerror(errno));
        }
        save = NULL; /* the next client's payload replaces this one's */
        lab_close(client);
        printf("client %s disconnected\n", peer);
    }
}
