/*
 * Lesson 13 - socket buffers and flow control: a client that sends until the buffers are full.
 *
 * send() returns once the kernel has copied the bytes into the socket's send buffer. They
 * wait there until the peer has them, and on the peer in its receive buffer until its
 * program reads. When both are full, send() blocks, or says "would block". This client asks
 * for buffer sizes with setsockopt(SO_SNDBUF, SO_RCVBUF) before connect() (the handshake
 * announces the receive window), reads back with getsockopt() what the kernel granted, then
 * sends BYTES and prints how many went out before send() would block for STALL_MS.
 *   send-first  sends everything, then reads: against a server that also sends first, both
 *               stop, since neither reads (a deadlock, found by the timeout);
 *   poll        waits in poll() for reading and writing at once, so it reads while it sends
 *               and the server's sends always find room: the cure.
 * A stopped client keeps its connection, so that `ss -tmi` can show it, until stdin ends.
 *
 * Run:    build/lessons/13-socket-buffers/client [HOST [PORT [MODE [SNDBUF [RCVBUF [BYTES]]]]]]
 *         (default 127.0.0.1 5050 send-first default default 10485760)
 * Before: 12-chat-room.    Next: 14-closing.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#define SHUT_WR SD_SEND /* shutdown()'s "no more sending", as Winsock spells it */
#endif

#define DEFAULT_BYTES 10485760L /* 10 MB: more than the default buffers hold */
#define STALL_MS 1000           /* nothing moved for this long: stop and say so */
#define CHUNK 65536             /* bytes offered to one send() or recv() */
#define REPORT 100              /* room for "SO_SNDBUF default ..., asked ..., got ..." */

static void print_usage(void)
{
    printf("usage: client [HOST [PORT [MODE [SNDBUF [RCVBUF [BYTES]]]]]]\n"
           "Connects to HOST:PORT (default %s %s) with SNDBUF and RCVBUF bytes of socket\n"
           "buffer asked for ('default': the system's) and sends BYTES (default %ld). MODE\n"
           "send-first (default) sends all, then reads until the server closes; poll reads\n"
           "while it sends. If nothing moves for %d ms it says 'stopped', keeps the\n"
           "connection until stdin ends (Ctrl-D; Ctrl-Z Enter on Windows) and exits 1.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT, DEFAULT_BYTES, STALL_MS);
}

/* What the kernel says the buffer is now - not what anyone asked for. */
static int buffer_size(lab_socket s, int option)
{
    int size = 0;
    socklen_t length = sizeof size;
    if (getsockopt(s, SOL_SOCKET, option, (char *)&size, &length) != 0) {
        lab_die("getsockopt", NULL, lab_last_error());
    }
    return size;
}

/* Asks for text bytes ("default": none); reports the default and what getsockopt() says. */
static void ask_for(lab_socket s, int option, const char *text, char *report, size_t size)
{
    const char *name = option == SO_RCVBUF ? "SO_RCVBUF" : "SO_SNDBUF";
    int before = buffer_size(s, option);
    long asked = -1;
    if (strcmp(text, "default") != 0 && lab_parse_count(text, 999999999L, &asked) != 0) {
        lab_usage_error("a size is a number of bytes or 'default', not", text);
    }
    int value = (int)asked;
    if (asked >= 0 && setsockopt(s, SOL_SOCKET, option, (const char *)&value, sizeof value) != 0) {
        lab_die("setsockopt", name, lab_last_error());
    }
    int got = buffer_size(s, option); /* what the kernel granted: not always what was asked */
    int n = snprintf(report, size, "%s default %d", name, before);
    if (asked >= 0) {
        snprintf(report + n, size - (size_t)n, ", asked %ld, got %d", asked, got);
    }
}

/* lab_connect(), with the buffers asked for between socket() and connect(). */
static lab_socket connect_with_buffers(const char *host, const char *port, char **sizes,
                                       char reports[2][REPORT])
{
    struct addrinfo hints = {0}, *addresses = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int status = getaddrinfo(host, port, &hints, &addresses);
    if (status != 0) {
        fprintf(stderr, "%s: getaddrinfo %s: %s\n", lab_program(), host, gai_strerror(status));
        exit(1);
    }
    char where[LAB_ADDRESS_TEXT] = "?";
    int error_code = 0;
    for (struct addrinfo *address = addresses; address != NULL; address = address->ai_next) {
        lab_address_text(address->ai_addr, where, sizeof where);
        lab_socket s = socket(address->ai_family, address->ai_socktype, address->ai_protocol);
        if (!lab_socket_ok(s)) {
            error_code = lab_last_error();
            continue;
        }
        ask_for(s, SO_SNDBUF, sizes[0], reports[0], REPORT); /* before connect(): the */
        ask_for(s, SO_RCVBUF, sizes[1], reports[1], REPORT); /* handshake offers a window */
        if (connect(s, address->ai_addr, (socklen_t)address->ai_addrlen) == 0) {
            freeaddrinfo(addresses);
            return s;
        }
        error_code = lab_last_error();
        lab_close(s);
    }
    freeaddrinfo(addresses);
    lab_die("connect", where, error_code);
}

/* Sends bytes, then (or meanwhile, if read_while_sending) receives until the server closes.
 * Prints what moved; returns 0 when done, or 1 when nothing moved for STALL_MS. */
static int exchange(lab_socket s, long bytes, int read_while_sending)
{
    static char chunk[CHUNK]; /* what is sent (or received) does not matter, only how much */
    long sent = 0, received = 0;
    int server_done = 0, stopped = 0;
    long long moved_at = lab_now_ms();
    if (bytes == 0) {
        shutdown(s, SHUT_WR); /* nothing to send: our end of file at once */
    }
    while (!stopped && (sent < bytes || !server_done)) {
        struct pollfd entry = {.fd = s, .events = sent < bytes ? POLLOUT : 0};
        if (!server_done && (sent == bytes || read_while_sending)) {
            entry.events |= POLLIN; /* the whole cure: in send-first, only once all is sent */
        }
        long long left = moved_at + STALL_MS - lab_now_ms();
        int ready = poll(&entry, 1, left > 0 ? (int)left : 0);
        stopped = ready == 0;
        /* revents, not events, says what happened (0 after a timeout). POLLERR and POLLHUP
         * come unasked: the call we were waiting to make meets the error and reports it. */
        lab_io_size n = 0;
        const char *call = ready < 0 ? "poll" : "recv";
        if ((entry.events & POLLIN) && (entry.revents & (POLLIN | POLLERR | POLLHUP))) {
            n = recv(s, chunk, CHUNK, 0);
            server_done = n == 0;
            received += n > 0 ? (long)n : 0;
        } else if ((entry.events & POLLOUT) && (entry.revents & (POLLOUT | POLLERR | POLLHUP))) {
            n = send(s, chunk, (int)(bytes - sent < CHUNK ? bytes - sent : CHUNK), 0);
            call = "send";
            sent += n > 0 ? (long)n : 0;
            if (n > 0 && sent == bytes) {
                shutdown(s, SHUT_WR); /* all sent: our end of file ends the server's reading */
            }
        }
        int error_code = lab_last_error();
        if ((ready < 0 || n < 0) && !lab_error_is_interrupt(error_code) &&
            !lab_error_is_would_block(error_code)) {
            lab_die(call, NULL, error_code);
        }
        moved_at = n > 0 || server_done ? lab_now_ms() : moved_at;
    }
    printf("sent %ld bytes%s\nreceived %ld bytes\n", sent,
           sent < bytes ? " before send would block" : "", received);
    return stopped;
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
    lab_client_arguments(argc, argv, 4, &host, &port);
    int poll_mode = argc > 3 && strcmp(argv[3], "poll") == 0;
    if (argc > 3 && !poll_mode && strcmp(argv[3], "send-first") != 0) {
        lab_usage_error("MODE is send-first or poll, not", argv[3]);
    }
    char *sizes[2] = {argc > 4 ? argv[4] : "default", argc > 5 ? argv[5] : "default"};
    long bytes = DEFAULT_BYTES;
    if (argc > 6 && lab_parse_count(argv[6], 999999999L, &bytes) != 0) {
        lab_usage_error("BYTES is a number from 0 to 999999999, not", argv[6]);
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* a send() to a server that left fails instead of killing us */
#endif
    char reports[2][REPORT];
    lab_socket s = connect_with_buffers(host, port, sizes, reports);
    printf("%s\n%s\n", reports[0], reports[1]);
    lab_announce_connected(s);
    if (lab_set_nonblocking(s) != 0) { /* "would block" instead of waiting: we can count */
        lab_die("set non-blocking", NULL, lab_last_error());
    }
    int stopped = exchange(s, bytes, poll_mode);
    /* Linux grows a send buffer nobody set (autotuning); one that was set stays. */
    printf("SO_SNDBUF now %d, SO_RCVBUF now %d\n", buffer_size(s, SO_SNDBUF),
           buffer_size(s, SO_RCVBUF));
    if (stopped) {
        printf("stopped: nothing moved for %d ms; the connection stays open until stdin ends\n",
               STALL_MS);
        while (getchar() != EOF) {
            /* meanwhile the buffers stay full: look at them with ss -tmi */
        }
    }
    lab_close(s);
    return stopped;
}
