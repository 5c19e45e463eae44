/*
 * Lesson 04 - the non-blocking server: one client at a time, and no call ever waits.
 *
 * Shows what changes when sockets are non-blocking:
 *   - O_NONBLOCK (fcntl) on POSIX, FIONBIO (ioctlsocket) on Windows, set on the listening
 *     socket AND on each accepted one;
 *   - accept(), recv() and send() return at once; "nothing yet" comes back as an error
 *     code (EAGAIN/EWOULDBLOCK, WSAEWOULDBLOCK) that is normal, not a failure;
 *   - so a client's state must outlive each call: its partial line (struct lab_line_reader)
 *     and the answers its socket has not taken yet (struct output, below);
 *   - a polling loop that pauses POLL_INTERVAL_MS when a round found nothing to do: the
 *     trade between CPU burnt while idle and delay added to each reply.
 * Clients are still served one after another, as in lesson 03: the next one waits in the
 * backlog. Lesson 05 keeps this loop and serves a list of clients with it.
 *
 * Run:    build/lessons/04-nonblocking-server/server [PORT [BIND-ADDRESS [POLL-MS]]]
 *         (default 5050 127.0.0.1 10), e.g. server 5050 127.0.0.1 200
 * Before: 03-iterative-server.    Next: 05-nonblocking-many.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#endif

#define POLL_INTERVAL_MS 10          /* the pause after a round that found nothing to do */
#define POLL_INTERVAL_LIMIT_MS 10000 /* the longest pause the command line accepts */

#define OUTPUT_MAX (16 * 1024)        /* answers waiting for the client's socket to take them */
#define ANSWER_MAX (LAB_LINE_MAX + 1) /* the longest answer: a whole line and its "\n" */

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS [POLL-MS]]]\n"
           "Echo server with non-blocking sockets: serves clients one after another, for\n"
           "ever, on BIND-ADDRESS:PORT (default %s:%s; port 0 picks a free port).\n"
           "POLL-MS (default %d, 0-%d) is how long the loop pauses when it found nothing\n"
           "to do: longer pauses use less CPU while idle but delay each reply more.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT, POLL_INTERVAL_MS, POLL_INTERVAL_LIMIT_MS);
}

/* ---- non-blocking mode ----------------------------------------------------------------- */

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

/* True when error_code means "the call would have had to wait": try again later. */
static int is_would_block(int error_code)
{
#ifdef _WIN32
    return error_code == WSAEWOULDBLOCK;
#else
    /* POSIX lets the two names be different numbers (on Linux they are the same). */
    return error_code == EAGAIN || error_code == EWOULDBLOCK;
#endif
}

/* ---- pending output: what send() did not take yet --------------------------------------- */

/* Answers waiting to be sent; the same contract as struct lab_output in common/. */
struct output {
    char bytes[OUTPUT_MAX];
    size_t used;
};

/* Appends len bytes if they fit; returns 0, or -1 (and appends nothing) if they do not. */
static int output_append(struct output *output, const void *data, size_t len)
{
    if (len > sizeof output->bytes - output->used) {
        return -1;
    }
    memcpy(output->bytes + output->used, data, len);
    output->used += len;
    return 0;
}

/* Sends as much as the socket takes now; returns 0 (maybe some left) or -1 on error. */
static int output_flush(struct output *output, lab_socket s)
{
    size_t sent_total = 0;
    while (sent_total < output->used) {
        lab_io_size sent = send(s, output->bytes + sent_total, (int)(output->used - sent_total), 0);
        if (sent < 0) {
            int error_code = lab_last_error();
            if (lab_error_is_interrupt(error_code)) {
                continue;
            }
            if (!is_would_block(error_code)) {
                return -1;
            }
            break; /* the socket's send buffer is full: the rest goes in a later round */
        }
        sent_total += (size_t)sent; /* a short send: loop, and the next send() tells */
    }
    memmove(output->bytes, output->bytes + sent_total, output->used - sent_total);
    output->used -= sent_total;
    return 0;
}

/* ---- one client ------------------------------------------------------------------------- */

/* Everything the server must remember about a client between two rounds of the loop. */
struct client {
    lab_socket socket;            /* LAB_INVALID_SOCKET while nobody is being served */
    struct lab_line_reader input; /* bytes received but not yet a whole line */
    struct output output;         /* answers the socket has not taken yet */
    int input_ended;              /* the client sent EOF: finish its answers, then close */
    char peer[LAB_ADDRESS_TEXT];
};

/* What one round did for a client. */
enum round_result {
    ROUND_IDLE,       /* nothing: no bytes in, none out */
    ROUND_BUSY,       /* something moved: go round again at once */
    ROUND_CLIENT_GONE /* the client left or failed: close it */
};

/* Answers the whole lines already received while their answers fit in the output; sets
 * *needs_input when no whole line is left. Returns 1 if it answered any line. */
static int answer_lines(struct client *client, int *needs_input)
{
    char line[LAB_LINE_MAX + 2];
    size_t length;
    int answered = 0;
    *needs_input = 0;
    /* Backpressure: a line is taken only when its longest answer fits. A client that sends
     * but does not read is then no longer read either: its lines wait in the kernel's
     * buffers, then in its own, and this server's memory stays bounded. */
    while (sizeof client->output.bytes - client->output.used >= ANSWER_MAX) {
        enum lab_line_status status = lab_line_take(&client->input, line, &length);
        if (status == LAB_LINE_READY) {
            line[length] = '\n';
            output_append(&client->output, line, length + 1); /* fits: checked above */
        } else if (status == LAB_LINE_TOO_LONG) {
            output_append(&client->output, LAB_LINE_TOO_LONG_REPLY,
                          strlen(LAB_LINE_TOO_LONG_REPLY));
        } else {
            *needs_input = 1;
            break;
        }
        answered = 1;
    }
    return answered;
}

/* Receives what has arrived, if anything; returns ROUND_BUSY, ROUND_IDLE or, on an error,
 * ROUND_CLIENT_GONE. End of file is remembered in client->input_ended. */
static enum round_result receive_input(struct client *client)
{
    lab_io_size received = lab_line_fill(&client->input, client->socket);
    if (received > 0) {
        return ROUND_BUSY;
    }
    if (received == 0) {
        client->input_ended = 1; /* maybe only half-closed: it may still read our answers */
        return ROUND_BUSY;
    }
    int error_code = lab_last_error();
    if (is_would_block(error_code)) {
        return ROUND_IDLE; /* nothing has arrived: normal, not an error */
    }
    lab_warn("recv", client->peer, error_code); /* e.g. reset by the client */
    return ROUND_CLIENT_GONE;
}

/* One round for the client: answer, receive, answer, send - each only as far as it goes
 * without waiting. */
static enum round_result serve_round(struct client *client)
{
    int needs_input;
    int busy = answer_lines(client, &needs_input); /* lines held back last round, if any */
    if (needs_input && !client->input_ended) {
        enum round_result received = receive_input(client);
        if (received == ROUND_CLIENT_GONE) {
            return ROUND_CLIENT_GONE;
        }
        if (received == ROUND_BUSY) {
            busy = 1;
            answer_lines(client, &needs_input);
        }
    }
    size_t pending = client->output.used;
    if (output_flush(&client->output, client->socket) != 0) {
        lab_warn("send", client->peer, lab_last_error()); /* EPIPE: SIGPIPE is ignored */
        return ROUND_CLIENT_GONE;
    }
    if (client->output.used < pending) {
        busy = 1;
    }
    if (client->input_ended && needs_input && client->output.used == 0) {
        return ROUND_CLIENT_GONE; /* every line answered and every answer sent */
    }
    return busy ? ROUND_BUSY : ROUND_IDLE;
}

/* Accepts the next client if one is waiting; returns 1 if it did. */
static int accept_client(lab_socket listener, struct client *client)
{
    struct sockaddr_storage client_address;
    socklen_t client_address_size = sizeof client_address;
    lab_socket accepted =
        accept(listener, (struct sockaddr *)&client_address, &client_address_size);
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
    lab_address_text((struct sockaddr *)&client_address, client->peer, sizeof client->peer);
    /* On Linux an accepted socket does NOT inherit O_NONBLOCK from the listener (on Windows
     * and the BSDs it does). Without this call recv() would wait for the client, and the
     * loop would stop. Setting it explicitly is right everywhere. */
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

/* Closes the client's socket and frees its place for the next client. */
static void drop_client(struct client *client)
{
    lab_close(client->socket);
    client->socket = LAB_INVALID_SOCKET;
    printf("client %s disconnected\n", client->peer);
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

    struct client client;
    client.socket = LAB_INVALID_SOCKET;
    for (;;) {
        int busy = 0;
        if (!lab_socket_ok(client.socket)) {
            busy = accept_client(listener, &client); /* returns at once if nobody waits */
        }
        if (lab_socket_ok(client.socket)) {
            enum round_result result = serve_round(&client);
            if (result == ROUND_CLIENT_GONE) {
                drop_client(&client);
            }
            busy |= result != ROUND_IDLE;
        }
        if (!busy) {
            /* A round found nothing to do. Asking again at once would spin at 100% CPU;
             * pausing means that a line arriving now waits up to poll_interval_ms. */
            lab_sleep_ms((int)poll_interval_ms);
        }
    }
}
