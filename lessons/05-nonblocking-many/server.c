/*
 * Lesson 05 - many clients, one thread: lesson 04's polling loop walks a table of clients.
 *
 * Shows the seed's single-thread non-blocking servers done right:
 *   - a fixed table of client slots, each with its own partial line, pending answers and
 *     end-of-input flag: since no call waits, one thread serves them all, turn by turn;
 *   - each round accepts every waiting connection, then gives every client one turn;
 *   - a client that leaves frees its slot in place, so walking the table while clients
 *     come and go never skips one (the seed removed items from the list it was walking);
 *   - a full table answers a newcomer "error: server full" and closes it;
 *   - the same pause after an idle round as lesson 04, and the same trade: CPU burnt
 *     while idle against delay added to replies. Lesson 09 (select) ends that trade.
 * Non-blocking mode, the would-block test and the pending output are lesson 04's, now from
 * common/ (lab_set_nonblocking, lab_error_is_would_block, struct lab_output).
 *
 * Run:    build/lessons/05-nonblocking-many/server [PORT [BIND-ADDRESS [POLL-MS]]]
 *         (default 5050 127.0.0.1 10), e.g. server 5050 127.0.0.1 200
 * Before: 04-nonblocking-server.    Next: 06-nonblocking-client.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PORT "5050"
#define DEFAULT_ADDRESS "127.0.0.1"
#define POLL_INTERVAL_MS 10          /* the pause after a round that found nothing to do */
#define POLL_INTERVAL_LIMIT_MS 10000 /* the longest pause the command line accepts */

#define MAX_CLIENTS 256 /* slots in the table; a client beyond them is turned away */
#define SERVER_FULL_REPLY "error: server full\n"
#define ANSWER_MAX (LAB_LINE_MAX + 1) /* the longest answer: a whole line and its "\n" */

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS [POLL-MS]]]\n"
           "Echo server with non-blocking sockets: one thread serves up to %d clients at\n"
           "once on BIND-ADDRESS:PORT (default %s:%s; port 0 picks a free port).\n"
           "POLL-MS (default %d, 0-%d) is how long the loop pauses when it found nothing\n"
           "to do: longer pauses use less CPU while idle but delay each reply more.\n",
           MAX_CLIENTS, DEFAULT_ADDRESS, DEFAULT_PORT, POLL_INTERVAL_MS, POLL_INTERVAL_LIMIT_MS);
}

/* Parses POLL-MS: a whole number of milliseconds from 0 to POLL_INTERVAL_LIMIT_MS. */
static int parse_interval(const char *text, int *milliseconds)
{
    long value = 0;
    if (*text == '\0' || strlen(text) > 5) {
        return -1;
    }
    for (const char *digit = text; *digit != '\0'; digit++) {
        if (*digit < '0' || *digit > '9') {
            return -1;
        }
        value = value * 10 + (*digit - '0');
    }
    if (value > POLL_INTERVAL_LIMIT_MS) {
        return -1;
    }
    *milliseconds = (int)value;
    return 0;
}

/* ---- one client's slot ------------------------------------------------------------------- */

/* Everything the server must remember about a client between two rounds of the loop. */
struct client {
    lab_socket socket;            /* LAB_INVALID_SOCKET while the slot is free */
    struct lab_line_reader input; /* bytes received but not yet a whole line */
    struct lab_output output;     /* answers the socket has not taken yet */
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
            lab_output_append(&client->output, line, length + 1); /* fits: checked above */
        } else if (status == LAB_LINE_TOO_LONG) {
            lab_output_append(&client->output, LAB_LINE_TOO_LONG_REPLY,
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
    if (lab_error_is_would_block(error_code)) {
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
    if (lab_output_flush(&client->output, client->socket) != 0) {
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

/* Returns the first free slot of the table, or NULL when every slot is taken. */
static struct client *free_slot(struct client *clients)
{
    for (size_t slot = 0; slot < MAX_CLIENTS; slot++) {
        if (!lab_socket_ok(clients[slot].socket)) {
            return &clients[slot];
        }
    }
    return NULL;
}

/* Tells a newcomer that the table is full, and closes it. Its socket is new, so its send
 * buffer is empty and takes these few bytes at once. */
static void turn_away(lab_socket newcomer, const struct sockaddr *address)
{
    char peer[LAB_ADDRESS_TEXT];
    lab_address_text(address, peer, sizeof peer);
    if (send(newcomer, SERVER_FULL_REPLY, (int)strlen(SERVER_FULL_REPLY), 0) < 0) {
        lab_warn("send", peer, lab_last_error());
    }
    lab_close(newcomer);
    printf("client %s turned away: server full\n", peer);
}

/* True for accept() errors that will not go away by trying again (lesson 03): with no
 * descriptor left, the finished connection stays queued and accept() fails again. */
static int accept_error_is_fatal(int error_code)
{
#ifdef _WIN32
    return error_code == WSAEMFILE || error_code == WSAENOBUFS;
#else
    return error_code == EMFILE || error_code == ENFILE;
#endif
}

/* Accepts the next waiting connection into a free slot, or turns it away if there is none;
 * returns 1 if a connection was waiting. */
static int accept_client(lab_socket listener, struct client *clients)
{
    struct sockaddr_storage client_address;
    socklen_t client_address_size = sizeof client_address;
    lab_socket accepted =
        accept(listener, (struct sockaddr *)&client_address, &client_address_size);
    if (!lab_socket_ok(accepted)) {
        int error_code = lab_last_error();
        if (accept_error_is_fatal(error_code)) {
            lab_die("accept", NULL, error_code); /* lesson 03's policy */
        }
        if (!lab_error_is_would_block(error_code)) {
            lab_warn("accept", NULL, error_code); /* e.g. ECONNABORTED: serve on */
        }
        return 0;
    }
    struct client *client = free_slot(clients);
    if (client == NULL) {
        turn_away(accepted, (struct sockaddr *)&client_address);
        return 1;
    }
    lab_address_text((struct sockaddr *)&client_address, client->peer, sizeof client->peer);
    /* Lesson 04: on Linux an accepted socket does not inherit non-blocking mode. */
    if (lab_set_nonblocking(accepted) != 0) {
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

/* Closes the client's socket and frees its slot for a newcomer. */
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
    const char *port = argc > 1 ? argv[1] : DEFAULT_PORT;
    const char *host = argc > 2 ? argv[2] : DEFAULT_ADDRESS;
    unsigned short port_number;
    int poll_interval_ms = POLL_INTERVAL_MS;
    if (argc > 4) {
        lab_usage_error("too many arguments", NULL);
    }
    if (lab_parse_port(port, &port_number) != 0) {
        lab_usage_error("invalid port (expected 0-65535)", port);
    }
    if (argc > 3 && parse_interval(argv[3], &poll_interval_ms) != 0) {
        lab_usage_error("invalid poll interval (expected 0-10000 ms)", argv[3]);
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* lesson 03's policy: a send() to a departed client fails */
#endif
    lab_socket listener = lab_listen(host, port); /* lesson 03's getaddrinfo loop */
    if (lab_set_nonblocking(listener) != 0) {
        lab_die("set non-blocking", NULL, lab_last_error());
    }
    lab_announce_listening(listener);

    /* On the heap: MAX_CLIENTS slots of about 17 KB each would overflow a thread's stack
     * (1 MB by default on Windows). */
    struct client *clients = calloc(MAX_CLIENTS, sizeof *clients);
    if (clients == NULL) {
        fprintf(stderr, "server: no memory for %d clients\n", MAX_CLIENTS);
        return 1;
    }
    for (size_t slot = 0; slot < MAX_CLIENTS; slot++) {
        clients[slot].socket = LAB_INVALID_SOCKET;
    }
    for (;;) {
        int busy = 0;
        while (accept_client(listener, clients)) { /* every waiting connection, not one */
            busy = 1;
        }
        for (size_t slot = 0; slot < MAX_CLIENTS; slot++) {
            struct client *client = &clients[slot];
            if (!lab_socket_ok(client->socket)) {
                continue;
            }
            enum round_result result = serve_round(client);
            if (result == ROUND_CLIENT_GONE) {
                /* Only this slot changes: no other client moves, so the walk goes on with
                 * the next slot and skips nobody. */
                drop_client(client);
            }
            busy |= result != ROUND_IDLE;
        }
        if (!busy) {
            /* A round found nothing to do. Asking again at once would spin at 100% CPU;
             * pausing means that a line arriving now waits up to poll_interval_ms. */
            lab_sleep_ms(poll_interval_ms);
        }
    }
}
