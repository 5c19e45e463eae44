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
 *     while idle against delay added to replies. Lesson 08 (select) ends that trade.
 * What lesson 04 taught about one client now comes from common/: its state is a
 * struct lab_echo_client and lab_echo_round() gives it one turn (answer, receive, answer,
 * send, each only as far as it goes without waiting), with lab_set_nonblocking and
 * lab_error_is_would_block. What is left here is this lesson's idea: the table and the walk.
 *
 * Run:    build/lessons/05-nonblocking-many/server [PORT [BIND-ADDRESS [POLL-MS]]]
 *         (default 5050 127.0.0.1 10), e.g. server 5050 127.0.0.1 200
 * Before: 04-nonblocking-server.    Next: 06-thread-per-client.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_INTERVAL_MS 10          /* the pause after a round that found nothing to do */
#define POLL_INTERVAL_LIMIT_MS 10000 /* the longest pause the command line accepts */

#define MAX_CLIENTS 256 /* slots in the table; a client beyond them is turned away */
#define SERVER_FULL_REPLY "error: server full\n"

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS [POLL-MS]]]\n"
           "Echo server with non-blocking sockets: one thread serves up to %d clients at\n"
           "once on BIND-ADDRESS:PORT (default %s:%s; port 0 picks a free port).\n"
           "POLL-MS (default %d, 0-%d) is how long the loop pauses when it found nothing\n"
           "to do: longer pauses use less CPU while idle but delay each reply more.\n",
           MAX_CLIENTS, LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT, POLL_INTERVAL_MS,
           POLL_INTERVAL_LIMIT_MS);
}

/* Returns the first free slot of the table, or NULL when every slot is taken. */
static struct lab_echo_client *free_slot(struct lab_echo_client *clients)
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
static void turn_away(lab_socket newcomer, const char *peer)
{
    if (send(newcomer, SERVER_FULL_REPLY, (int)strlen(SERVER_FULL_REPLY), 0) < 0) {
        lab_warn("send", peer, lab_last_error());
    }
    lab_close(newcomer);
    printf("client %s turned away: server full\n", peer);
}

/* Accepts the next waiting connection into a free slot, or turns it away if there is none;
 * returns 1 if a connection was waiting. lab_accept() is lesson 03's accept(), except that
 * out of descriptors (EMFILE) it warns and pauses 50 ms instead of ending the server: this
 * one holds clients whose leaving gives descriptors back. The connection stays queued,
 * and the clients already here are served between tries. */
static int accept_client(lab_socket listener, struct lab_echo_client *clients)
{
    char peer[LAB_ADDRESS_TEXT];
    lab_socket accepted = lab_accept(listener, peer, sizeof peer);
    if (!lab_socket_ok(accepted)) {
        return 0; /* nobody waiting, or a failure lab_accept() has warned about */
    }
    struct lab_echo_client *client = free_slot(clients);
    if (client == NULL) {
        turn_away(accepted, peer);
        return 1;
    }
    /* Lesson 04: on Linux an accepted socket does not inherit non-blocking mode. */
    if (lab_set_nonblocking(accepted) != 0) {
        lab_warn("set non-blocking", peer, lab_last_error());
        lab_close(accepted);
        return 0;
    }
    lab_echo_client_init(client, accepted, peer);
    printf("client connected from %s\n", client->peer);
    return 1;
}

/* Closes the client's socket, frees its buffers and its slot for a newcomer. */
static void drop_client(struct lab_echo_client *client)
{
    lab_echo_client_close(client);
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
    lab_server_arguments(argc, argv, 1, &port, &host);
    if (argc > 3 && lab_parse_count(argv[3], POLL_INTERVAL_LIMIT_MS, &poll_interval_ms) != 0) {
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

    /* On the heap, as the table a later lesson grows; each slot allocates its buffers only
     * while they hold bytes (lab_echo_round), so a quiet client costs about 100 bytes. */
    struct lab_echo_client *clients = calloc(MAX_CLIENTS, sizeof *clients);
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
            struct lab_echo_client *client = &clients[slot];
            if (!lab_socket_ok(client->socket)) {
                continue;
            }
            enum lab_round_result result = lab_echo_round(client); /* lesson 04's turn */
            if (result == LAB_ROUND_CLIENT_GONE) {
                /* Only this slot changes: no other client moves, so the walk goes on with
                 * the next slot and skips nobody. */
                drop_client(client);
            }
            busy |= result != LAB_ROUND_IDLE;
        }
        if (!busy) {
            /* A round found nothing to do. Asking again at once would spin at 100% CPU;
             * pausing means that a line arriving now waits up to poll_interval_ms. */
            lab_sleep_ms((int)poll_interval_ms);
        }
    }
}
