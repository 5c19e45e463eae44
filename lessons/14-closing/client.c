/*
 * Lesson 14 - closing well: a client that ends its connection in the way MODE says.
 *
 * It sends the lines it reads from stdin to an echo server and prints what each call saw.
 *   half-close    sends every line, then shutdown(SHUT_WR): "no more from me" (FIN). It
 *                 still reads: every answer arrives, then the server's end of file. It sent
 *                 the first FIN, so TIME_WAIT stays here.
 *   wait          sends a line, prints its answer, and so on; then waits for the server
 *                 to close first, and closes after it.
 *   close-unread  sends every line, waits until an answer has arrived, and closes without
 *                 reading it: unread data at close() makes the kernel send RST, not FIN.
 *   abort         like wait, but instead of waiting sets SO_LINGER {1, 0} and closes: RST.
 * When recv() fails, it sends once more to show what a send() gets after a reset (EPIPE).
 *
 * Run:    build/lessons/14-closing/client [HOST [PORT [MODE]]]
 *         (default 127.0.0.1 5050 half-close)
 * Before: 13-socket-buffers.    Next: 15-bulk-transfer.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#ifdef _WIN32
#define SHUT_WR SD_SEND /* shutdown()'s "no more sending", as Winsock spells it */
#endif

enum mode { HALF_CLOSE, WAIT, CLOSE_UNREAD, ABORT };
static const char *const mode_names[] = {"half-close", "wait", "close-unread", "abort"};

static void print_usage(void)
{
    printf("usage: client [HOST [PORT [MODE]]]\n"
           "Connects to HOST:PORT (default %s %s), sends the lines of stdin and ends the\n"
           "connection as MODE says:\n"
           "  half-close    (default) send all, shutdown(SHUT_WR), read answers to end of file\n"
           "  wait          send a line, print its answer; at end of input wait for the\n"
           "                server to close first\n"
           "  close-unread  send all, close() once an answer arrived but unread: RST\n"
           "  abort         send a line, print its answer; then close with SO_LINGER {1, 0}\n"
           "Prints each answer and what each call saw, e.g. 'recv: end of file'.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

/* Prints "CALL: REASON" on stdout. After a failed recv() it sends once more and prints what
 * that send() saw: after a reset, EPIPE ("Broken pipe"). Returns 1, the exit status. */
static int say_failed(lab_socket server, const char *call, int error_code)
{
    char text[200];
    printf("%s: %s\n", call, lab_error_text(error_code, text, sizeof text));
    if (strcmp(call, "recv") == 0) {
        if (send(server, "again\n", 6, 0) < 0) {
            printf("send: %s\n", lab_error_text(lab_last_error(), text, sizeof text));
        } else {
            printf("send: accepted by the kernel\n");
        }
    }
    return 1;
}

/* Reads one answer and prints it; returns 0, or what say_failed() returns, or 2 at EOF. */
static int print_answer(lab_socket server, struct lab_line_reader *reader)
{
    char line[LAB_LINE_MAX + 1];
    size_t length;
    enum lab_line_status status = lab_read_line(reader, server, line, &length);
    if (status == LAB_LINE_CLOSED) {
        printf("recv: end of file\n"); /* the server's FIN, after all it sent */
        return 2;
    }
    if (status == LAB_LINE_ERROR) {
        return say_failed(server, "recv", lab_last_error());
    }
    printf("%s\n", status == LAB_LINE_TOO_LONG ? "(an answer longer than the limit)" : line);
    return 0;
}

int main(int argc, char **argv)
{
    lab_startup("client");
    if (lab_wants_help(argc, argv)) {
        print_usage();
        return 0;
    }
    const char *host;
    const char *port;
    lab_client_arguments(argc, argv, 1, &host, &port);
    enum mode mode = HALF_CLOSE;
    while (argc > 3 && strcmp(argv[3], mode_names[mode]) != 0) {
        if (++mode > ABORT) {
            lab_usage_error("MODE is half-close, wait, close-unread or abort, not", argv[3]);
        }
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* a send() after a reset fails with EPIPE instead of killing us */
#endif
    lab_socket server = lab_connect(host, port);
    lab_announce_connected(server);
    struct lab_line_reader reader;
    lab_line_reader_init(&reader);
    static char typed[LAB_LINE_MAX + 2];
    int typed_length, status = 0;
    while (status == 0 && (typed_length = lab_read_stdin_line(typed, LAB_LINE_MAX + 1)) >= 0) {
        typed[typed_length] = '\n';
        if (lab_send_all(server, typed, (size_t)typed_length + 1) != 0) {
            status = say_failed(server, "send", lab_last_error());
        } else if (mode == WAIT || mode == ABORT) {
            status = print_answer(server, &reader); /* lock-step: one answer per line */
        }
    }
    if (status == 0 && mode == HALF_CLOSE) {
        if (shutdown(server, SHUT_WR) != 0) {
            status = say_failed(server, "shutdown", lab_last_error());
        } else {
            printf("shutdown: SHUT_WR\n"); /* our FIN: the server sees end of file */
        }
    }
    if (status == 0 && mode == CLOSE_UNREAD) {
        struct pollfd entry = {.fd = server, .events = POLLIN};
        if (poll(&entry, 1, -1) > 0) { /* an answer is here: we leave it unread */
            printf("close: answers unread\n");
        }
    } else if (status == 0 && mode == ABORT) {
        struct linger linger = {1, 0}; /* l_onoff 1, l_linger 0: close() resets */
        if (setsockopt(server, SOL_SOCKET, SO_LINGER, (const char *)&linger, sizeof linger) != 0) {
            lab_warn("setsockopt", "SO_LINGER", lab_last_error());
        }
        printf("close: SO_LINGER {1, 0}\n");
    } else {
        while (status == 0) { /* half-close, wait: read to the server's end of file */
            status = print_answer(server, &reader);
        }
    }
    lab_close(server);
    return status == 2 ? 0 : status;
}
