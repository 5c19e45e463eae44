/*
 * output_test.c - the contract of struct lab_output (common/nonblock.c, common/lab.h):
 *   - lab_output_append() takes len bytes if they fit, to the last byte of LAB_OUTPUT_MAX,
 *     and refuses one byte more, appending nothing (from empty, and from part full);
 *   - lab_output_flush() on a non-blocking socket whose peer does not read sends what the
 *     socket takes, keeps the rest in order and returns 0; once the peer reads, the rest
 *     follows, every byte once and in order;
 *   - lab_output_flush() to a peer that has closed returns -1 (an error, not "would block").
 * Run:    build/tests/output_test (CTest: ctest --preset default -R unit.output)
 * POSIX only: it uses socketpair(), which Winsock lacks.
 */
#include "lab.h"

#include <signal.h>
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

static void appends_up_to_the_last_byte(void)
{
    static struct lab_output output; /* 16 KB: static, not on the stack */
    static char bytes[LAB_OUTPUT_MAX + 1];
    memset(bytes, 'b', sizeof bytes);

    output.used = 0;
    check(lab_output_append(&output, bytes, LAB_OUTPUT_MAX + 1) == -1 && output.used == 0,
          "from empty, LAB_OUTPUT_MAX + 1 bytes are refused and nothing is appended");
    check(lab_output_append(&output, bytes, LAB_OUTPUT_MAX) == 0 &&
              output.used == LAB_OUTPUT_MAX,
          "from empty, exactly LAB_OUTPUT_MAX bytes are taken");
    check(lab_output_append(&output, "x", 1) == -1 && output.used == LAB_OUTPUT_MAX,
          "full, one byte more is refused and nothing is appended");

    output.used = 0;
    check(lab_output_append(&output, "0123456789", 10) == 0 && output.used == 10,
          "10 bytes are taken");
    check(lab_output_append(&output, bytes, LAB_OUTPUT_MAX - 9) == -1 && output.used == 10,
          "one byte more than the room left is refused and nothing is appended");
    check(lab_output_append(&output, bytes, LAB_OUTPUT_MAX - 10) == 0 &&
              output.used == LAB_OUTPUT_MAX,
          "exactly the room left is taken");
    check(memcmp(output.bytes, "0123456789", 10) == 0 && output.bytes[10] == 'b' &&
              output.bytes[LAB_OUTPUT_MAX - 1] == 'b',
          "the bytes are kept in the order appended");
}

/* Reads what has arrived now, without waiting; returns the count. */
static size_t read_now(int s, unsigned char *into, size_t size)
{
    size_t total = 0;
    lab_io_size got;
    while (total < size && (got = recv(s, into + total, size - total, MSG_DONTWAIT)) > 0) {
        total += (size_t)got;
    }
    return total;
}

static void flushes_what_the_socket_takes_and_keeps_the_rest(void)
{
    int ends[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, ends) != 0) {
        perror("socketpair");
        exit(1);
    }
    int small = 4096; /* far less than LAB_OUTPUT_MAX: the socket refuses the rest */
    setsockopt(ends[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(ends[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    lab_set_nonblocking(ends[0]);

    static struct lab_output output;
    static unsigned char sent[4 * LAB_OUTPUT_MAX], received[sizeof sent];
    for (size_t i = 0; i < sizeof sent; i++) {
        sent[i] = (unsigned char)(i * 7 + i / 251); /* no period a lost block would hide */
    }
    output.used = 0;
    size_t appended = 0, got = 0;
    int rounds = 0, kept_some = 0, flush_failed = 0;
    while (got < sizeof sent && rounds++ < 100000) {
        size_t room = LAB_OUTPUT_MAX - output.used;
        size_t take = sizeof sent - appended < room ? sizeof sent - appended : room;
        if (take > 0 && lab_output_append(&output, sent + appended, take) == 0) {
            appended += take;
        }
        if (lab_output_flush(&output, ends[0]) != 0) {
            flush_failed = 1;
            break;
        }
        kept_some |= output.used > 0;
        got += read_now(ends[1], received + got, sizeof received - got);
    }
    check(!flush_failed, "a socket that is only full is not an error");
    check(kept_some, "what the socket did not take was kept for later");
    check(got == sizeof sent && memcmp(sent, received, sizeof sent) == 0,
          "every byte arrived once and in order");
    check(output.used == 0, "at the end nothing is left");
    close(ends[0]);
    close(ends[1]);
}

static void a_closed_peer_is_an_error(void)
{
    int ends[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, ends) != 0) {
        perror("socketpair");
        exit(1);
    }
    lab_set_nonblocking(ends[0]);
    close(ends[1]);
    static struct lab_output output;
    output.used = 0;
    lab_output_append(&output, "answer\n", 7);
    check(lab_output_flush(&output, ends[0]) == -1,
          "a flush to a peer that has closed fails (EPIPE), it is not \"would block\"");
    close(ends[0]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the lab's policy: a send to a closed peer fails with EPIPE */
    appends_up_to_the_last_byte();
    flushes_what_the_socket_takes_and_keeps_the_rest();
    a_closed_peer_is_an_error();
    printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
