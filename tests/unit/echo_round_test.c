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
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures != 0;
}
