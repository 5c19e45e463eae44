/*
 * echo_round_test.c - the contract of lab_echo_round() and lab_echo_wants() (common/lab.h),
 * checked on a pair of connected sockets, without a server around them:
 *   - called until it reports LAB_ROUND_IDLE, the round has answered every whole line and
 *     the socket has nothing more to read (the rule edge-triggered epoll depends on);
 *   - one call alone does not get that far when more than one read's worth is waiting;
 *   - an idle client holds no buffers, and asks only to read;
 *   - answers the peer does not read make the client ask to write, and stop asking to read;
 *   - after the peer's end of file, every answer is sent, then the round says "gone".
 * Run:    build/tests/echo_round_test (CTest: ctest --preset default -R echo_round)
 * POSIX only: it uses socketpair(), which Winsock lacks.
 */
#include "lab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks, failures;

static void check(int condition, const char *claim)
{
    printf("%s: %s\n", condition ? "ok" : "FAILED", claim);
    checks++;
    failures += !condition;
}

/* Rounds until idle or gone; returns how many rounds reported LAB_ROUND_BUSY. */
static int rounds_until_idle(struct lab_echo_client *client, enum lab_round_result *last)
{
    int busy_rounds = 0;
    while ((*last = lab_echo_round(client)) == LAB_ROUND_BUSY) {
        busy_rounds++;
    }
    return busy_rounds;
}

static size_t read_all_now(int s, char *into, size_t size)
{
    size_t total = 0;
    lab_io_size got;
    while (total < size && (got = recv(s, into + total, size - total, MSG_DONTWAIT)) > 0) {
        total += (size_t)got;
    }
    return total;
}

/* A level-triggered loop's turn for one client: wait (not at all) for what it asks for,
 * then give it a round. Returns 0 if the socket was not ready for it, 1 if it was. */
static int loop_turn(struct lab_echo_client *client)
{
    enum lab_want want = lab_echo_wants(client);
    struct pollfd entry = {.fd = client->socket, .events = 0};
    entry.events |= (want & LAB_WANT_READ) ? POLLIN : 0;
    entry.events |= (want & LAB_WANT_WRITE) ? POLLOUT : 0;
    if (poll(&entry, 1, 0) <= 0) {
        return 0;
    }
    return lab_echo_round(client) != LAB_ROUND_CLIENT_GONE;
}

#define BATCH_LINE 37 /* "line 0001....\n": 36 bytes and the newline */

/* A peer pipelines batch_lines lines without reading (as far as the buffers let it), stops
 * sending without closing, then reads. A level-triggered loop serves the other end. Returns
 * 1 if every byte sent was answered, 0 if the loop went to sleep with answers still owed. */
static int pipelined_batch_answered(int batch_lines, int server_buffer, int peer_buffer)
{
    int ends[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, ends) != 0) {
        perror("socketpair");
        exit(1);
    }
    setsockopt(ends[0], SOL_SOCKET, SO_SNDBUF, &server_buffer, sizeof server_buffer);
    setsockopt(ends[1], SOL_SOCKET, SO_SNDBUF, &peer_buffer, sizeof peer_buffer);
    lab_set_nonblocking(ends[0]);
    lab_set_nonblocking(ends[1]);
    struct lab_echo_client client;
    lab_echo_client_init(&client, ends[0], "peer");
    static char batch[2000 * BATCH_LINE], answers[sizeof batch];
    for (int line = 0; line < batch_lines; line++) {
        char *start = batch + line * BATCH_LINE;
        memset(start, '.', BATCH_LINE - 1);
        memcpy(start, "line ", 5);
        start[5] = (char)('0' + line / 1000 % 10); /* the number keeps lines apart */
        start[6] = (char)('0' + line / 100 % 10);
        start[7] = (char)('0' + line / 10 % 10);
        start[8] = (char)('0' + line % 10);
        start[BATCH_LINE - 1] = '\n';
    }
    size_t size = (size_t)batch_lines * BATCH_LINE, sent = 0, answered = 0;
    while (sent < size) { /* send until sent or nobody can move */
        lab_io_size taken = send(ends[1], batch + sent, size - sent, 0);
        if (taken > 0) {
            sent += (size_t)taken;
        } else if (!loop_turn(&client)) {
            break; /* the buffers are full: this batch is as big as they allow */
        }
    }
    while (loop_turn(&client)) {
        /* the peer has stopped sending: the loop serves until it would sleep */
    }
    for (;;) { /* then read, while the loop serves */
        size_t got = read_all_now(ends[1], answers + answered, sizeof answers - answered);
        answered += got;
        if (!loop_turn(&client) && got == 0) {
            break; /* nothing ready, nothing arrived: the loop would sleep for ever now */
        }
    }
    lab_echo_client_close(&client);
    close(ends[1]);
    size_t whole_lines = sent - sent % BATCH_LINE; /* a line cut off by full buffers waits */
    return answered == whole_lines && memcmp(answers, batch, whole_lines) == 0;
}

/* Every batch size from 1 to batches lines; returns how many were left unanswered. */
static int unanswered_batches(int batches, int server_buffer, int peer_buffer)
{
    int unanswered = 0;
    for (int lines = 1; lines <= batches; lines++) {
        if (!pipelined_batch_answered(lines, server_buffer, peer_buffer)) {
            if (unanswered++ < 5) {
                printf("  batch of %d lines (%d bytes), send buffers %d/%d: answers missing\n",
                       lines, lines * BATCH_LINE, server_buffer, peer_buffer);
            }
        }
    }
    return unanswered;
}

int main(void)
{
    int ends[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, ends) != 0 || lab_set_nonblocking(ends[0]) != 0) {
        perror("socketpair");
        return 1;
    }
    struct lab_echo_client client;
    lab_echo_client_init(&client, ends[0], "peer");
    check(lab_echo_wants(&client) == LAB_WANT_READ, "a new client asks only to read");

    static char burst[40 * 501], answers[sizeof burst];
    for (int line = 0; line < 40; line++) { /* 40 lines of 500 bytes: about 20 reads' worth */
        memset(burst + line * 501, 'a' + line % 26, 500);
        burst[line * 501 + 500] = '\n';
    }
    if (send(ends[1], burst, sizeof burst, 0) != (lab_io_size)sizeof burst) {
        perror("send");
        return 1;
    }
    check(lab_echo_round(&client) == LAB_ROUND_BUSY, "one round with bytes waiting is busy");
    enum lab_round_result last;
    check(rounds_until_idle(&client, &last) > 0, "one round does not take a whole burst");
    check(last == LAB_ROUND_IDLE, "rounds end idle, not gone");
    char peek;
    check(recv(ends[0], &peek, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
              lab_error_is_would_block(lab_last_error()),
          "idle means drained: the next recv() would block");
    check(read_all_now(ends[1], answers, sizeof answers) == sizeof burst &&
              memcmp(answers, burst, sizeof burst) == 0,
          "every line was answered, whole and in order");
    check(client.input == NULL && client.output == NULL, "an idle client holds no buffers");

    /* A peer that sends but never reads: answers pile up, then reading stops. */
    size_t sent = 0;
    while (send(ends[1], burst, 501, MSG_DONTWAIT) == 501 && sent < 64 * 1024 * 1024) {
        sent += 501;
        lab_echo_round(&client);
    }
    rounds_until_idle(&client, &last);
    check(lab_echo_wants(&client) == LAB_WANT_WRITE,
          "answers the peer does not read: ask to write, not to read");

    /* The peer reads everything and ends its input: answers first, then "gone". */
    shutdown(ends[1], SHUT_WR);
    static char sink[1 << 16];
    for (int round = 0; round < 100000 && last != LAB_ROUND_CLIENT_GONE; round++) {
        read_all_now(ends[1], sink, sizeof sink);
        last = lab_echo_round(&client);
    }
    check(last == LAB_ROUND_CLIENT_GONE, "after end of file and every answer: gone");
    lab_echo_client_close(&client);
    close(ends[1]);
    /* Before the round sent and answered in turn, 16 of each 2000 sizes were left owed. */
    int unanswered = unanswered_batches(2000, 65536, 8192) + unanswered_batches(2000, 32768, 32768);
    printf("pipelined batches of 1-2000 lines, two buffer sizes: %d of 4000 left unanswered\n",
           unanswered);
    check(unanswered == 0, "a pipelined batch of any size is answered in full, with no more input");
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures != 0;
}
