/*
 * Lesson 14 - closing well: a server that ends each connection in the way MODE says.
 *
 * How a connection ends decides what the peer sees. close() after every answer went out
 * sends FIN: the peer reads all, then end of file. close() with input unread, or with
 * SO_LINGER {1, 0} set, sends RST: the peer's recv() fails (ECONNRESET) and its next send()
 * fails too (EPIPE). The side that sends the first FIN keeps the connection in TIME_WAIT
 * (60 s on Linux): its address and port stay taken until then, unless SO_REUSEADDR.
 *   graceful    echoes lines; at the client's end of file it sends every answer still
 *               queued, then closes (FIN). The client, which closed first, gets TIME_WAIT.
 *   unread      waits for input, then closes without reading it: RST.
 *   abort       echoes lines; at end of file sets SO_LINGER {1, 0} and closes: RST at once.
 *   close-first answers one line, then closes first (FIN): TIME_WAIT stays on this port.
 * One client at a time. What each call saw is printed: "recv: end of file", "close: ...".
 *
 * Run:    build/lessons/14-closing/server [PORT [BIND-ADDRESS [MODE]]]
 *         (default 5050 127.0.0.1 graceful)
 * Before: 13-socket-buffers.    Next: 15-bulk-transfer.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

enum mode { GRACEFUL, UNREAD, ABORT, CLOSE_FIRST };
static const char *const mode_names[] = {"graceful", "unread", "abort", "close-first"};

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS [MODE]]]\n"
           "Listens on BIND-ADDRESS:PORT (default %s:%s; 0: any free port) and serves one\n"
           "client at a time. MODE says how each connection ends:\n"
           "  graceful     (default) echo lines; at the client's end of file send every\n"
           "               answer, then close: FIN\n"
           "  unread       wait for input, close without reading it: RST\n"
           "  abort        echo lines; at end of file close with SO_LINGER {1, 0}: RST\n"
           "  close-first  answer one line, then close first: TIME_WAIT on this side\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

/* Prints "CALL: REASON" for a failed call, on stdout: what this end saw is the lesson. */
static void say_failed(const char *call, int error_code)
{
    char text[200];
    printf("%s: %s\n", call, lab_error_text(error_code, text, sizeof text));
}

/* graceful: lesson 04's non-blocking round, waited for with poll() (lesson 10). At end of
 * file the round goes on while answers wait in the output queue: only then does it close. */
static void serve_graceful(lab_socket s, const char *peer)
{
    struct lab_echo_client client;
    lab_echo_client_init(&client, s, peer);
    if (lab_set_nonblocking(s) != 0) {
        lab_warn("set non-blocking", peer, lab_last_error());
    }
    int said_end = 0;
    for (;;) {
        enum lab_round_result result = lab_echo_round(&client); /* warns of any failure */
        if (client.input_ended && !said_end) {
            said_end = 1;
            printf("recv: end of file\n"); /* the client's FIN: it may still read answers */
        }
        if (result == LAB_ROUND_CLIENT_GONE) {
            break;
        }
        enum lab_want want = lab_echo_wants(&client);
        struct pollfd entry = {.fd = s,
                               .events = (short)((want & LAB_WANT_READ ? POLLIN : 0) |
                                                 (want & LAB_WANT_WRITE ? POLLOUT : 0))};
        if (poll(&entry, 1, -1) < 0 && !lab_error_is_interrupt(lab_last_error())) {
            lab_warn("poll", peer, lab_last_error());
            break;
        }
    }
    if (client.input_ended && client.output == NULL) {
        printf("close: every answer sent\n");
    }
    lab_echo_client_close(&client); /* closes s: our FIN follows the last answer */
}

/* Echoes lines on a blocking socket until end of file (1), a failure (0, said) or, if
 * first_only, the first answer (1). */
static int echo_lines(lab_socket s, int first_only)
{
    struct lab_line_reader reader;
    lab_line_reader_init(&reader);
    char line[LAB_LINE_MAX + 2];
    size_t length;
    for (;;) {
        enum lab_line_status status = lab_read_line(&reader, s, line, &length);
        if (status == LAB_LINE_CLOSED) {
            printf("recv: end of file\n");
            return 1;
        }
        if (status == LAB_LINE_ERROR) {
            say_failed("recv", lab_last_error());
            return 0;
        }
        const char *answer = line;
        line[length++] = '\n';
        if (status == LAB_LINE_TOO_LONG) {
            answer = LAB_LINE_TOO_LONG_REPLY;
            length = strlen(answer);
        }
        if (lab_send_all(s, answer, length) != 0) {
            say_failed("send", lab_last_error());
            return 0;
        }
        if (first_only) {
            return 1;
        }
    }
}

static void serve(lab_socket s, const char *peer, enum mode mode)
{
    if (mode == GRACEFUL) {
        serve_graceful(s, peer);
        return;
    }
    if (mode == UNREAD) {
        struct pollfd entry = {.fd = s, .events = POLLIN};
        if (poll(&entry, 1, -1) > 0) { /* bytes (or FIN) arrived: we leave them unread */
            printf("close: input unread\n");
        }
    } else if (mode == ABORT) {
        if (echo_lines(s, 0)) {
            struct linger linger = {1, 0}; /* l_onoff 1, l_linger 0: close() resets */
            if (setsockopt(s, SOL_SOCKET, SO_LINGER, (const char *)&linger, sizeof linger) != 0) {
                lab_warn("setsockopt", "SO_LINGER", lab_last_error());
            }
            printf("close: SO_LINGER {1, 0}\n");
        }
    } else if (echo_lines(s, 1)) {
        printf("close: first\n"); /* our FIN goes first: TIME_WAIT will be ours */
    }
    lab_close(s);
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
    enum mode mode = GRACEFUL;
    while (argc > 3 && strcmp(argv[3], mode_names[mode]) != 0) {
        if (++mode > CLOSE_FIRST) {
            lab_usage_error("MODE is graceful, unread, abort or close-first, not", argv[3]);
        }
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* a send() after an RST fails with EPIPE instead of killing us */
#endif
    lab_socket listener = lab_listen(host, port); /* with SO_REUSEADDR: see the guide */
    lab_announce_listening(listener);
    for (;;) {
        char peer[LAB_ADDRESS_TEXT];
        lab_socket client = lab_accept(listener, peer, sizeof peer);
        if (!lab_socket_ok(client)) {
            continue; /* lab_accept warned, and paused if out of descriptors */
        }
        printf("client connected from %s\n", peer);
        serve(client, peer, mode);
        printf("client %s disconnected\n", peer);
    }
}
