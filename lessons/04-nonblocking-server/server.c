/*
 * Lesson 04 - the non-blocking server: one client at a time, and no call ever waits.
 *
 * Shows non-blocking sockets (O_NONBLOCK with fcntl on POSIX, FIONBIO on Windows, set on
 * the listening socket AND on each accepted one): accept(), recv() and send() return at
 * once, and "nothing yet" comes back as an error code (EAGAIN/EWOULDBLOCK, WSAEWOULDBLOCK)
 * that is normal. So a client's state outlives each call (struct client), and a polling
 * loop pauses POLL-MS after an idle round: CPU burnt while idle against delay added to
 * each reply. One client at a time, as in lesson 03.
 *
 * Run:    build/lessons/04-nonblocking-server/server [PORT [BIND-ADDRESS [POLL-MS]]]
 *         (default 5050 127.0.0.1 10), e.g. server 5050 127.0.0.1 200
 * Before: 03-iterative-server.    Next: 05-nonblocking-many.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#endif

#define POLL_INTERVAL_MS 10           /* the pause after a round that found nothing to do */
#define POLL_INTERVAL_LIMIT_MS 10000  /* the longest pause the command line accepts */
#define OUTPUT_MAX (16 * 1024)        /* answers waiting for the socket; at most LAB_OUTPUT_MAX */
#define ANSWER_MAX (LAB_LINE_MAX + 1) /* the longest answer: a whole line and its "\n" */

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS [POLL-MS]]]\n"
           "Echo server with non-blocking sockets: serves clients one after another, for\n"
           "ever, on BIND-ADDRESS:PORT (default %s:%s; port 0 picks a free port). POLL-MS\n"
           "(default %d, 0-%d) is the pause after a round that found nothing to do: longer\n"
           "pauses use less CPU while idle but delay each reply more.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT, POLL_INTERVAL_MS, POLL_INTERVAL_LIMIT_MS);
}

/* Makes every later call on s return at once instead of waiting; returns 0 or -1. */
static int set_nonblocking(lab_socket s)
{
#ifdef _WIN32
    u_long on = 1; /* Winsock has no fcntl(): a socket ioctl switches the mode */
    return ioctlsocket(s, FIONBIO, &on) == 0 ? 0 : -1;
#else
    int flags = fcntl(s, F_GETFL, 0); /* read the flags first: F_SETFL replaces them all */
    if (flags < 0) {
        return -1;
    }
    return fcntl(s, F_SETFL, flags | O_NONBLOCK);
#endif
}

/* True when error_code means "the call would have had to wait": try again later. POSIX lets
 * EAGAIN and EWOULDBLOCK be different numbers (on Linux they are the same). */
static int is_would_block(int error_code)
{
#ifdef _WIN32
    return error_code == WSAEWOULDBLOCK;
#else
    return error_code == EAGAIN || error_code == EWOULDBLOCK;
#endif
}

/* Everything the server must remember about a client between two rounds of the loop. */
struct client {
    lab_socket socket;            /* LAB_INVALID_SOCKET while nobody is being served */
    struct lab_line_reader input; /* bytes received but not yet a whole line (lesson 02) */
    struct lab_output output;     /* answers the socket has not taken yet (nonblock.c) */
    int input_ended;              /* the client sent EOF: finish its answers, then close */
    char peer[LAB_ADDRESS_TEXT];
};

/* Answers the whole lines received while their answers fit. Backpressure: a client that
 * does not read is then not read either (needs_input, below); our memory stays bounded. */
static void answer_lines(struct client *client)
{
    char line[LAB_LINE_MAX + 2];
    size_t length;
    while (OUTPUT_MAX - client->output.used >= ANSWER_MAX) {
        enum lab_line_status status = lab_line_take(&client->input, line, &length);
        if (status == LAB_LINE_NEED_MORE) {
            return;
        }
        if (status == LAB_LINE_READY) {
            line[length] = '\n';
            lab_output_append(&client->output, line, length + 1); /* fits: see the while */
        } else {
            lab_output_append(&client->output, LAB_LINE_TOO_LONG_REPLY,
                              strlen(LAB_LINE_TOO_LONG_REPLY));
        }
    }
}

/* One round for the client: answer, receive, answer, send - each only as far as it goes
 * without waiting. Returns 1 if anything moved, 0 if nothing did, -1 if the client is gone. */
static int serve_round(struct client *client)
{
    answer_lines(client); /* lines held back last round, if any */
    int needs_input = OUTPUT_MAX - client->output.used >= ANSWER_MAX; /* no whole line left */
    lab_io_size received = -1; /* -1: nothing received this round */
    if (needs_input && !client->input_ended) {
        received = lab_line_fill(&client->input, client->socket);
        int error_code = lab_last_error(); /* read at once: only meaningful when received < 0 */
        if (received < 0 && !is_would_block(error_code)) {
            lab_warn("recv", client->peer, error_code); /* e.g. reset by the client */
            return -1;
        }
        client->input_ended = received == 0; /* maybe half-closed: it may still read answers */
        answer_lines(client);
        needs_input = OUTPUT_MAX - client->output.used >= ANSWER_MAX;
    }
    /* lab_output_flush(): send() until the socket would block; the rest waits, in order. */
    size_t pending = client->output.used;
    if (lab_output_flush(&client->output, client->socket) != 0) {
        lab_warn("send", client->peer, lab_last_error()); /* EPIPE: SIGPIPE is ignored */
        return -1;
    }
    if (client->input_ended && needs_input && client->output.used == 0) {
        return -1; /* every line answered and every answer sent */
    }
    return received >= 0 || client->output.used < pending; /* bytes in, end of file or out */
}

/* Accepts the next client if one is waiting; returns 1 if it did. */
static int accept_client(lab_socket listener, struct client *client)
{
    struct sockaddr_storage address;
    socklen_t address_size = sizeof address;
    lab_socket accepted = accept(listener, (struct sockaddr *)&address, &address_size);
    if (!lab_socket_ok(accepted)) {
        int error_code = lab_last_error();
        if (lab_error_is_out_of_descriptors(error_code)) {
            lab_die("accept", NULL, error_code); /* lesson 03's policy */
        }
        if (!is_would_block(error_code)) {
            lab_warn("accept", NULL, error_code); /* e.g. ECONNABORTED: serve on */
        }
        return 0;
    }
    lab_address_text((struct sockaddr *)&address, client->peer, sizeof client->peer);
    /* On Linux an accepted socket does NOT inherit O_NONBLOCK (on Windows and the BSDs it
     * does): without this call recv() would wait for the client and stop the loop. */
    if (set_nonblocking(accepted) != 0) {
        lab_warn("set non-blocking", client->peer, lab_last_error());
        lab_close(accepted);
        return 0;
    }
    client->socket = accepted;
    lab_line_reader_init(&client->input);
    client->output.used = 0;
    client->input_ended = 0;
    printf("client connected from %s\n", client->peer);
    return 1;
}

int main(int argc, char **argv)
{
    lab_startup("server");
    if (lab_wants_help(argc, argv)) {
        print_usage();
        return 0;
    }
    const char *port, *host;
    long poll_interval_ms = POLL_INTERVAL_MS;
    lab_server_arguments(argc, argv, 1, &port, &host); /* lesson 03's checks, in common/ */
    if (argc > 3 && lab_parse_count(argv[3], POLL_INTERVAL_LIMIT_MS, &poll_interval_ms) != 0) {
        lab_usage_error("invalid poll interval (expected 0-10000 ms)", argv[3]);
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* lesson 03's policy: a send() to a departed client fails */
#endif
    lab_socket listener = lab_listen(host, port); /* lesson 03's getaddrinfo loop */
    if (set_nonblocking(listener) != 0) {
        lab_die("set non-blocking", NULL, lab_last_error());
    }
    lab_announce_listening(listener);

    static struct client client = {.socket = LAB_INVALID_SOCKET}; /* static: 16 KB of output */
    for (;;) {
        int busy = 0;
        if (!lab_socket_ok(client.socket)) {
            busy = accept_client(listener, &client); /* returns at once if nobody waits */
        }
        if (lab_socket_ok(client.socket)) {
            int result = serve_round(&client);
            if (result < 0) {
                lab_close(client.socket);
                client.socket = LAB_INVALID_SOCKET;
                printf("client %s disconnected\n", client.peer);
            }
            busy |= result != 0;
        }
        if (!busy) {
            /* A round found nothing to do. Asking again at once would spin at 100% CPU;
             * pausing means that a line arriving now waits up to poll_interval_ms. */
            lab_sleep_ms((int)poll_interval_ms);
        }
    }
}
