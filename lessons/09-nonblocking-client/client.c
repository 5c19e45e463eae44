/*
 * Lesson 09 - the non-blocking client: a connect with a deadline, and no lock-step.
 *
 * Lesson 03's client waits in two places. Its connect() blocks for as long as the kernel
 * keeps retrying an unanswered handshake (about two minutes on Linux), and its loop sends
 * one line, then waits for that line's answer before it reads the next. This client waits
 * in neither place:
 *   - the socket is non-blocking before connect(), so connect() returns at once with
 *     EINPROGRESS (WSAEWOULDBLOCK on Windows): the handshake is under way. select() waits
 *     for the socket to become writable - the handshake is over - but only until a
 *     deadline; then getsockopt(SO_ERROR) says whether it worked;
 *   - one select() loop (lesson 08's call) waits for the keyboard and the server together:
 *     typed bytes go out as they come (what the socket cannot take yet waits in a struct
 *     lab_output), answers print as they arrive, and end of input becomes a half-close -
 *     shutdown() - so the answers still on their way are printed before the program ends.
 * The keyboard is common/keyboard.c's: stdin itself on POSIX; on Windows, whose select()
 * takes sockets only, a socket that a small thread feeds from stdin (README.md says more).
 *
 * Run:    build/lessons/09-nonblocking-client/client [HOST [PORT [TIMEOUT-MS]]]
 *         (default 127.0.0.1 5050 5000), e.g. client localhost 5050 1000
 * Before: 08-select.    Next: 10-poll.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#define SHUT_WR SD_SEND /* shutdown()'s "no more sending", as Winsock spells it */
#else
#include <sys/select.h>
#include <time.h>
#endif

#define DEFAULT_TIMEOUT_MS 5000L
#define MAX_TIMEOUT_MS 3600000L /* an hour: anything longer is a typing mistake */

static void print_usage(void)
{
    printf("usage: client [HOST [PORT [TIMEOUT-MS]]]\n"
           "Connects to an echo server at HOST:PORT (default %s %s), giving up after\n"
           "TIMEOUT-MS milliseconds (default %ld, at most %ld) if the connection cannot be\n"
           "made. Sends stdin as it comes and prints each answer as it arrives; at end of\n"
           "input it tells the server so (half-close) and prints the remaining answers.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT, DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS);
}

/* Milliseconds on a clock that only goes forward: a deadline must not move when someone
 * sets the wall clock (time() or gettimeofday() would). */
static long long now_ms(void)
{
#ifdef _WIN32
    return (long long)GetTickCount64();
#else
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
#endif
}

/* POSIX's fd_set is a bitmap indexed by descriptor: FD_SET() on a descriptor >= FD_SETSIZE
 * writes past its end (lesson 08). So each new socket is checked before any FD_SET();
 * Winsock's fd_set is a list of sockets, limited in count, not by value. */
static void check_fits_select(lab_socket s)
{
#ifdef _WIN32
    (void)s;
#else
    if (s >= FD_SETSIZE) {
        fprintf(stderr, "client: descriptor %d is too big for select()\n", s);
        exit(1);
    }
#endif
}

/* select()'s first argument: one more than the highest descriptor it watches (POSIX);
 * Winsock ignores it. */
static int select_limit(lab_socket highest)
{
#ifdef _WIN32
    (void)highest;
    return 0;
#else
    return highest + 1;
#endif
}

/* True when connect() on a non-blocking socket has started the handshake, to end later. */
static int connect_under_way(int error_code)
{
#ifdef _WIN32
    return error_code == WSAEWOULDBLOCK;
#else
    /* EINTR: a signal cut connect() short, but the handshake goes on all the same. */
    return error_code == EINPROGRESS || error_code == EINTR;
#endif
}

enum connect_outcome { CONNECT_DONE, CONNECT_FAILED, CONNECT_TIMED_OUT };

/* Waits until the handshake on s is over or the deadline passes, then reads its result.
 * On CONNECT_FAILED, *error_code says why. */
static enum connect_outcome finish_connect(lab_socket s, long long deadline, int *error_code)
{
    for (;;) {
        long long remaining = deadline - now_ms();
        if (remaining <= 0) {
            return CONNECT_TIMED_OUT;
        }
        fd_set writable, failed;
        FD_ZERO(&writable);
        FD_SET(s, &writable); /* POSIX: writable = the handshake is over, for better or worse */
        FD_ZERO(&failed);
        FD_SET(s, &failed); /* Windows: a FAILED connect shows here, never in writable */
        struct timeval wait;
        wait.tv_sec = (long)(remaining / 1000);
        wait.tv_usec = (long)(remaining % 1000) * 1000;
        int ready = select(select_limit(s), NULL, &writable, &failed, &wait);
        if (ready > 0) {
            break;
        }
        if (ready < 0 && !lab_error_is_interrupt(lab_last_error())) {
            *error_code = lab_last_error();
            return CONNECT_FAILED;
        }
        /* 0: the time is up (the loop's first line says so); EINTR: wait the rest. */
    }
    /* Writable does not mean connected: a refused connection is "over" too. SO_ERROR
     * holds the handshake's result - 0, or e.g. ECONNREFUSED - and reading it clears it. */
    int result = 0;
    socklen_t result_size = sizeof result;
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&result, &result_size) != 0) {
        *error_code = lab_last_error();
        return CONNECT_FAILED;
    }
    if (result != 0) {
        *error_code = result;
        return CONNECT_FAILED;
    }
    return CONNECT_DONE;
}

/* Starts a non-blocking connect to one address and sees it through until the deadline. */
static enum connect_outcome connect_before(lab_socket s, const struct addrinfo *address,
                                           long long deadline, int *error_code)
{
    if (lab_set_nonblocking(s) != 0) { /* lesson 04 showed fcntl/ioctlsocket in full */
        *error_code = lab_last_error();
        return CONNECT_FAILED;
    }
    if (connect(s, address->ai_addr, (socklen_t)address->ai_addrlen) == 0) {
        return CONNECT_DONE; /* allowed: a local connection may be made at once */
    }
    *error_code = lab_last_error();
    if (!connect_under_way(*error_code)) {
        return CONNECT_FAILED; /* failed at once, e.g. no route to that network */
    }
    return finish_connect(s, deadline, error_code);
}

/* Resolves host:port and connects to the first address that accepts, all of it within
 * timeout_ms; exits with a message naming the address if that cannot be done. */
static lab_socket connect_to_server(const char *host, const char *port, long timeout_ms)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *addresses;
    int status = getaddrinfo(host, port, &hints, &addresses);
    if (status != 0) {
        fprintf(stderr, "client: getaddrinfo %s: %s\n", host, gai_strerror(status));
        exit(1);
    }
    long long deadline = now_ms() + timeout_ms; /* one deadline for every address */
    char where[LAB_ADDRESS_TEXT] = "?";
    int error_code = 0;
    enum connect_outcome outcome = CONNECT_FAILED;
    for (struct addrinfo *address = addresses; address != NULL; address = address->ai_next) {
        lab_address_text(address->ai_addr, where, sizeof where);
        lab_socket server = socket(address->ai_family, address->ai_socktype, address->ai_protocol);
        if (!lab_socket_ok(server)) {
            error_code = lab_last_error();
            continue;
        }
        check_fits_select(server); /* before the first FD_SET() on it */
        outcome = connect_before(server, address, deadline, &error_code);
        if (outcome == CONNECT_DONE) {
            freeaddrinfo(addresses);
            printf("connected to %s\n", where);
            return server;
        }
        lab_close(server);
        if (outcome == CONNECT_TIMED_OUT) {
            break; /* no time is left for the other addresses */
        }
    }
    freeaddrinfo(addresses);
    if (outcome == CONNECT_TIMED_OUT) {
        fprintf(stderr, "client: connect %s: timed out after %ld ms\n", where, timeout_ms);
        exit(1);
    }
    lab_die("connect", where, error_code);
}

/* ---- the conversation ------------------------------------------------------------------ */

/* What the loop knows about the conversation with the server. */
struct session {
    lab_socket server;
    struct lab_keyboard keyboard;   /* stdin, in a form select() takes (common/keyboard.c) */
    struct lab_line_reader replies; /* the server's answers, cut into lines */
    struct lab_output typed;        /* typed bytes the socket has not taken yet */
    char last_typed;                /* the last byte read from stdin, '\n' if none */
    int input_ended;                /* stdin is at end of file */
    int told_server;                /* end of input passed on with shutdown() */
};

/* True when stdin should be watched: input goes on and the output buffer has room. One
 * byte stays free for the "\n" a last line may lack. */
static int wants_typed_input(const struct session *session)
{
    return !session->input_ended && session->typed.used + 1 < sizeof session->typed.bytes;
}

/* Moves what stdin holds now into the output buffer; at end of input, ends the last line. */
static void read_typed_input(struct session *session)
{
    char chunk[LAB_OUTPUT_MAX];
    size_t room = sizeof session->typed.bytes - session->typed.used - 1;
    long count = lab_keyboard_read(&session->keyboard, chunk, room);
    if (count > 0) {
        lab_output_append(&session->typed, chunk, (size_t)count); /* fits: count <= room */
        session->last_typed = chunk[count - 1];
        return;
    }
    session->input_ended = 1; /* 0, or -1: stdin is unusable (warned), so treat it as ended */
    if (session->last_typed != '\n') {
        lab_output_append(&session->typed, "\n", 1); /* unanswered without it */
    }
}

/* Tells the server no more lines will come - a half-close: our side sends FIN, but the
 * connection stays open the other way, so the answers still on their way arrive. Closing
 * the socket instead would throw them away. */
static void tell_server_input_ended(struct session *session)
{
    session->told_server = 1;
    if (shutdown(session->server, SHUT_WR) != 0) {
        lab_warn("shutdown", NULL, lab_last_error());
    }
}

/* Receives what the server sent and prints each whole line. Returns 1 while the
 * connection is open, 0 once the server has closed it, -1 on an error. */
static int print_replies(struct session *session)
{
    lab_io_size received = lab_line_fill(&session->replies, session->server);
    if (received == 0) {
        return 0;
    }
    if (received < 0) {
        int error_code = lab_last_error();
        if (lab_error_is_would_block(error_code)) {
            return 1; /* readiness is a hint, not a promise: nothing to read after all */
        }
        lab_warn("recv", NULL, error_code);
        return -1;
    }
    char reply[LAB_LINE_MAX + 1];
    size_t length;
    enum lab_line_status status;
    while ((status = lab_line_take(&session->replies, reply, &length)) != LAB_LINE_NEED_MORE) {
        if (status == LAB_LINE_TOO_LONG) {
            printf("(the server's reply was longer than %d bytes)\n", LAB_LINE_MAX);
            continue;
        }
        fwrite(reply, 1, length, stdout);
        putchar('\n');
    }
    return 1;
}

/* Sends typed bytes and prints answers until the server closes; returns the exit status:
 * 0 if the server closed after being told that input ended, 1 otherwise. */
static int converse(struct session *session)
{
    lab_socket server = session->server;
    lab_socket keyboard = session->keyboard.waitable;
    /* select()'s limit covers both: stdin, 0 on POSIX, lies below the socket, but need not. */
    lab_socket highest = server > keyboard ? server : keyboard;
    for (;;) {
        if (session->input_ended && session->typed.used == 0 && !session->told_server) {
            tell_server_input_ended(session); /* every typed byte is out: now say so */
        }
        fd_set readable, writable;
        FD_ZERO(&readable);
        FD_ZERO(&writable);
        FD_SET(server, &readable); /* an answer, or the server's close */
        if (wants_typed_input(session)) {
            FD_SET(keyboard, &readable);
        }
        if (session->typed.used > 0) {
            /* Only while bytes wait: a connected socket is nearly always writable, and
             * asking anyway would make select() return at once, round after round. */
            FD_SET(server, &writable);
        }
        if (select(select_limit(highest), &readable, &writable, NULL, NULL) < 0) {
            if (lab_error_is_interrupt(lab_last_error())) {
                continue;
            }
            lab_die("select", NULL, lab_last_error());
        }
        if (FD_ISSET(keyboard, &readable)) {
            read_typed_input(session);
        }
        if (session->typed.used > 0 && lab_output_flush(&session->typed, server) != 0) {
            lab_warn("send", NULL, lab_last_error()); /* e.g. EPIPE: the server is gone */
            return 1;
        }
        if (FD_ISSET(server, &readable)) {
            int still_open = print_replies(session);
            if (still_open < 0) {
                return 1;
            }
            if (still_open == 0) {
                if (session->told_server) {
                    return 0; /* it answered everything, then closed: the normal end */
                }
                printf("server closed the connection\n");
                return 1;
            }
        }
    }
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
    long timeout_ms = DEFAULT_TIMEOUT_MS;
    lab_client_arguments(argc, argv, 1, &host, &port);
    if (argc > 3 &&
        (lab_parse_count(argv[3], MAX_TIMEOUT_MS, &timeout_ms) != 0 || timeout_ms < 1)) {
        lab_usage_error("invalid timeout (expected 1-3600000 milliseconds)", argv[3]);
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* a send() to a closed connection fails with EPIPE instead */
#endif
    struct session session;
    memset(&session, 0, sizeof session);
    session.server = connect_to_server(host, port, timeout_ms);
    if (lab_keyboard_open(&session.keyboard) != 0) {
        return 1;
    }
    session.last_typed = '\n';
    lab_line_reader_init(&session.replies);
    int status = converse(&session);
    lab_close(session.server);
    return status;
}
