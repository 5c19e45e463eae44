/*
 * Lesson 16 - the client that is never left waiting: it answers the server's heartbeat, and
 * its own keepalive finds a server that has gone without a word.
 *
 * Lesson 12's client (keyboard and socket in one poll()), with each wait bounded:
 *   - connect() is non-blocking and poll() waits for it until CONNECT_TIMEOUT_MS (lesson
 *     09's idea, then SO_ERROR says how the handshake ended);
 *   - the server's line "* ping" is answered with "* pong" at once; neither the ping nor the
 *     echo of that pong is printed, so what you see is what you typed, echoed;
 *   - KEEPALIVE (IDLE,INTERVAL,COUNT seconds, default 60,10,5, or off) sets SO_KEEPALIVE and
 *     its times, and TCP_USER_TIMEOUT (Linux) to their total: a server that vanished ends
 *     the client with "recv: Connection timed out" instead of a wait for ever.
 *
 * Run:    build/lessons/16-dead-peers/client [HOST [PORT [KEEPALIVE]]]
 *         (default 127.0.0.1 5050 60,10,5)
 * Before: 15-bulk-transfer (diff against 12-chat-room).    Next: 17-io-uring.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#define SHUT_WR SD_SEND /* Winsock's name for "no more sending" */
#define TIMED_OUT WSAETIMEDOUT
#define IN_PROGRESS WSAEWOULDBLOCK /* a non-blocking connect() under way */
#else
#include <netinet/tcp.h> /* TCP_KEEPIDLE, TCP_USER_TIMEOUT, ... */
#define TIMED_OUT ETIMEDOUT
#define IN_PROGRESS EINPROGRESS
#endif

#define CONNECT_TIMEOUT_MS 5000
#define MOST_USER_TIMEOUT_S 86400L /* a day, as the server's USER-TIMEOUT-MS: an int of ms */

static void print_usage(void)
{
    printf("usage: client [HOST [PORT [KEEPALIVE]]]\n"
           "Echo client for HOST:PORT (default %s %s) that answers the server's \"* ping\"\n"
           "with \"* pong\" (neither is printed). KEEPALIVE is IDLE,INTERVAL,COUNT in seconds\n"
           "(default 60,10,5) or off. Gives up connecting after %d ms.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT, CONNECT_TIMEOUT_MS);
}

struct session {
    lab_socket server;
    struct lab_keyboard keyboard;
    struct lab_line_reader lines; /* the server's lines, cut at "\n" */
    struct lab_output typed;      /* typed bytes and pongs the socket has not taken yet */
    char last_typed;              /* the last byte typed, '\n' if none */
    int input_ended;              /* end of input seen on the keyboard */
    int told_server;              /* ...and passed on to the server: shutdown() */
    int pongs_unechoed;           /* pongs sent whose echo has not come back yet */
};

/* The server's parse_keepalive(): "IDLE,INTERVAL,COUNT" or "off"; 0, or -1 if invalid. */
static int parse_keepalive(const char *text, long keepalive[3])
{
    char extra;
    keepalive[0] = 0;
    return strcmp(text, "off") == 0 ||
                   (sscanf(text, "%ld,%ld,%ld%c", &keepalive[0], &keepalive[1], &keepalive[2],
                           &extra) == 3 &&
                    keepalive[0] >= 1 && keepalive[0] <= 32767 && keepalive[1] >= 1 &&
                    keepalive[1] <= 32767 && keepalive[2] >= 1 && keepalive[2] <= 127)
               ? 0
               : -1;
}

static void set_option(lab_socket s, int level, int option, long value, const char *name)
{
    int number = (int)value;
    if (setsockopt(s, level, option, (const char *)&number, sizeof number) != 0) {
        lab_warn("setsockopt", name, lab_last_error()); /* the client goes on without it */
    }
}

/* Keepalive with these times, and a user timeout of their total (the server's reasons). */
static void set_keepalive(lab_socket s, const long keepalive[3])
{
    if (keepalive[0] == 0) {
        return;
    }
#if defined(TCP_KEEPIDLE) || defined(TCP_KEEPALIVE)
#ifndef TCP_KEEPIDLE
#define TCP_KEEPIDLE TCP_KEEPALIVE /* macOS's name for it */
#endif
    set_option(s, IPPROTO_TCP, TCP_KEEPIDLE, keepalive[0], "TCP_KEEPIDLE");
#endif
#ifdef TCP_KEEPINTVL
    set_option(s, IPPROTO_TCP, TCP_KEEPINTVL, keepalive[1], "TCP_KEEPINTVL");
#endif
#ifdef TCP_KEEPCNT
    set_option(s, IPPROTO_TCP, TCP_KEEPCNT, keepalive[2], "TCP_KEEPCNT");
#endif
    set_option(s, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
#ifdef TCP_USER_TIMEOUT
    long seconds = keepalive[0] + keepalive[1] * keepalive[2]; /* its ms may pass 2^31 */
    set_option(s, IPPROTO_TCP, TCP_USER_TIMEOUT,
               (seconds < MOST_USER_TIMEOUT_S ? seconds : MOST_USER_TIMEOUT_S) * 1000,
               "TCP_USER_TIMEOUT");
#endif
}

/* Waits until the handshake on s is over or the deadline passes; returns 0 (connected) or
 * the reason it failed (TIMED_OUT at the deadline). */
static int finish_connect(lab_socket s, long long deadline)
{
    struct pollfd entry = {.fd = s, .events = POLLOUT};
    int ready;
    do {
        long long left = deadline - lab_now_ms();
        if (left <= 0) {
            return TIMED_OUT;
        }
        ready = poll(&entry, 1, (int)left);
    } while (ready == 0 || (ready < 0 && lab_error_is_interrupt(lab_last_error())));
    int result = 0;
    socklen_t size = sizeof result;
    if (ready < 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&result, &size) != 0) {
        return lab_last_error();
    }
    return result; /* writable means "over", not "connected": SO_ERROR says how */
}

/* Connects to the first of host's addresses that answers, all within CONNECT_TIMEOUT_MS;
 * exits with a message naming the last address tried if none does. */
static lab_socket connect_within_timeout(const char *host, const char *port)
{
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *addresses;
    int status = getaddrinfo(host, port, &hints, &addresses);
    if (status != 0) {
        fprintf(stderr, "client: getaddrinfo %s: %s\n", host, gai_strerror(status));
        exit(1);
    }
    long long deadline = lab_now_ms() + CONNECT_TIMEOUT_MS; /* one for every address */
    char where[LAB_ADDRESS_TEXT] = "?";
    int error_code = 0;
    for (struct addrinfo *address = addresses; address != NULL; address = address->ai_next) {
        lab_address_text(address->ai_addr, where, sizeof where);
        lab_socket s = socket(address->ai_family, address->ai_socktype, address->ai_protocol);
        if (!lab_socket_ok(s)) {
            error_code = lab_last_error();
            continue;
        }
        if (lab_set_nonblocking(s) != 0) {
            error_code = lab_last_error();
        } else if (connect(s, address->ai_addr, (socklen_t)address->ai_addrlen) != 0 &&
                   (error_code = lab_last_error()) != IN_PROGRESS &&
                   !lab_error_is_interrupt(error_code)) { /* EINTR: the handshake goes on */
            /* refused or unreachable at once */
        } else if ((error_code = finish_connect(s, deadline)) == 0) {
            freeaddrinfo(addresses);
            printf("connected to %s\n", where);
            return s;
        }
        lab_close(s);
    }
    freeaddrinfo(addresses);
    lab_die("connect", where, error_code);
}

/* Moves what was typed into the output; at end of input, ends a last unfinished line. */
static void read_keyboard(struct session *session)
{
    char chunk[LAB_OUTPUT_MAX];
    size_t room = sizeof session->typed.bytes - session->typed.used - 1; /* 1 for a "\n" */
    long count = lab_keyboard_read(&session->keyboard, chunk, room);
    if (count > 0) {
        lab_output_append(&session->typed, chunk, (size_t)count); /* fits: count <= room */
        session->last_typed = chunk[count - 1];
        return;
    }
    session->input_ended = 1;
    if (session->last_typed != '\n') {
        lab_output_append(&session->typed, "\n", 1);
    }
}

/* Prints each whole line the server sent, but answers a ping instead and hides our pongs'
 * echoes. Returns 1 while the connection is open, 0 once the server closed it, -1 on an
 * error (e.g. keepalive found the server gone: ETIMEDOUT). */
static int take_server_lines(struct session *session)
{
    lab_io_size received = lab_line_fill(&session->lines, session->server);
    if (received <= 0) {
        if (received < 0 && lab_error_is_would_block(lab_last_error())) {
            return 1; /* readiness is a hint: nothing after all */
        }
        if (received < 0) {
            lab_warn("recv", NULL, lab_last_error());
        }
        return received == 0 ? 0 : -1;
    }
    char line[LAB_LINE_MAX + 1];
    size_t length;
    enum lab_line_status status;
    while ((status = lab_line_take(&session->lines, line, &length)) != LAB_LINE_NEED_MORE) {
        if (status == LAB_LINE_TOO_LONG) {
            printf("(a line longer than %d bytes from the server)\n", LAB_LINE_MAX);
        } else if (strcmp(line, "* ping") == 0) {
            /* Mid-line a pong would land inside the typed line; the line's end answers then.
             * After end of input the server is told we are done: nothing to answer. */
            if (session->last_typed == '\n' && !session->input_ended &&
                lab_output_append(&session->typed, "* pong\n", 7) == 0) {
                session->pongs_unechoed++;
            }
        } else if (strcmp(line, "* pong") == 0 && session->pongs_unechoed > 0) {
            session->pongs_unechoed--; /* our own answer, echoed: not for the user */
        } else {
            fwrite(line, 1, length, stdout);
            putchar('\n');
        }
    }
    return 1;
}

/* Lesson 12's converse(): one poll() over keyboard and server until the server closes;
 * returns the exit status: 0 if it closed after our end of input, 1 otherwise. */
static int converse(struct session *session)
{
    for (;;) {
        if (session->input_ended && session->typed.used == 0 && !session->told_server) {
            session->told_server = 1; /* every typed byte is out: now say we are done */
            if (shutdown(session->server, SHUT_WR) != 0) {
                lab_warn("shutdown", NULL, lab_last_error());
            }
        }
        int keyboard_room = session->typed.used + 1 < sizeof session->typed.bytes;
        struct pollfd entries[2] = {
            {.fd = session->keyboard.waitable,
             .events = (short)(!session->input_ended && keyboard_room ? POLLIN : 0)},
            {.fd = session->server,
             .events = (short)(POLLIN | (session->typed.used ? POLLOUT : 0))},
        };
        /* No timeout: while nothing is typed, the kernel's keepalive watches the server and
         * ends this wait with an error if it is gone. */
        int first = entries[0].events ? 0 : 1;
        if (poll(entries + first, (unsigned long)(2 - first), -1) < 0) {
            if (lab_error_is_interrupt(lab_last_error())) {
                continue;
            }
            lab_die("poll", NULL, lab_last_error());
        }
        if (entries[0].revents != 0 && first == 0) {
            read_keyboard(session);
        }
        if (session->typed.used > 0 && lab_output_flush(&session->typed, session->server) != 0) {
            lab_warn("send", NULL, lab_last_error()); /* e.g. ETIMEDOUT: the server is gone */
            return 1;
        }
        if (entries[1].revents != 0) {
            int still_open = take_server_lines(session);
            if (still_open <= 0) {
                if (still_open == 0 && !session->told_server) {
                    printf("server closed the connection\n");
                }
                return still_open == 0 && session->told_server ? 0 : 1;
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
    lab_client_arguments(argc, argv, 1, &host, &port);
    long keepalive[3];
    if (parse_keepalive(argc > 3 ? argv[3] : "60,10,5", keepalive) != 0) {
        lab_usage_error("invalid KEEPALIVE (expected IDLE,INTERVAL,COUNT or off)", argv[3]);
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* a send() to a closed connection fails with EPIPE instead */
#endif
    static struct session session; /* static: zeroed, and it lasts as long as the process */
    session.server = connect_within_timeout(host, port);
    set_keepalive(session.server, keepalive);
    if (lab_keyboard_open(&session.keyboard) != 0) {
        return 1;
    }
    session.last_typed = '\n';
    lab_line_reader_init(&session.lines);
    return converse(&session);
}
