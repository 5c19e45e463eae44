/*
 * Lesson 10 - poll: lesson 08's loop with an array of struct pollfd instead of fd_sets.
 *
 * poll() takes an array of struct pollfd as long as needed: no FD_SETSIZE, so nobody is
 * turned away. poll() writes what happened into revents; events keeps what was asked.
 * The array is refilled each round, in the list's order, and grows only when the list
 * does; POLLOUT only while answers wait (lesson 08's rule, now lab_echo_wants); POLLERR or
 * POLLHUP alone sends the client to its round, whose recv() meets the error.
 * On Windows poll() is WSAPoll (README.md names its failure with refused connects).
 *
 * Run:    build/lessons/10-poll/server [PORT [BIND-ADDRESS]]   (default 5050 127.0.0.1)
 * Before: 09-nonblocking-client (diff against 08-select).    Next: 11-epoll.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS]]\n"
           "Echo server: one thread waits in poll() for every client at once, on\n"
           "BIND-ADDRESS:PORT (default %s:%s; port 0 picks a free port). It serves as many\n"
           "clients as the descriptor limit (ulimit -n) and memory allow.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

/* Accepts every waiting connection (the listener is non-blocking: lab_try_accept says
 * "nobody" when the queue is empty) and adds each one it can serve to the list. Returns 1
 * if a connection is left waiting because no descriptor is free, else 0. */
static int accept_clients(lab_socket listener, struct lab_client_list *clients)
{
    char peer[LAB_ADDRESS_TEXT];
    lab_socket accepted;
    int out_of_descriptors;
    while (lab_socket_ok(accepted =
                             lab_try_accept(listener, peer, sizeof peer, &out_of_descriptors))) {
        if (lab_set_nonblocking(accepted) != 0) {
            lab_warn("set non-blocking", peer, lab_last_error());
            lab_close(accepted);
        } else {
            lab_client_add(clients, accepted, peer);
        }
    }
    return out_of_descriptors;
}

/* Gives a ready client lesson 05's round; drops it if it left or failed. */
static void serve_client(struct lab_client_list *clients, struct lab_echo_client *client)
{
    if (lab_echo_round(client) == LAB_ROUND_CLIENT_GONE) {
        lab_client_remove(clients, client);
    }
}

/* Fills the array poll() reads (kept, grown only with the list: no malloc per wake): entry 0
 * the listener, then each client in the list's order and what it waits for. No memory ends
 * the server. */
static void fill_entries(struct pollfd **entries, size_t *capacity, lab_socket listener,
                         const struct lab_client_list *clients)
{
    if (clients->count + 1 > *capacity) {
        *capacity = 2 * (clients->count + 1);
        if ((*entries = realloc(*entries, *capacity * sizeof **entries)) == NULL) {
            fprintf(stderr, "server: no memory for %zu poll entries\n", *capacity);
            exit(1);
        }
    }
    (*entries)[0] = (struct pollfd){.fd = listener, .events = POLLIN};
    struct pollfd *entry = *entries + 1;
    for (struct lab_echo_client *client = clients->first; client != NULL; client = client->next) {
        enum lab_want want = lab_echo_wants(client);
        *entry = (struct pollfd){.fd = client->socket, .events = 0};
        if (want & LAB_WANT_READ) {
            entry->events |= POLLIN;
        }
        if (want & LAB_WANT_WRITE) {
            entry->events |= POLLOUT;
        }
        entry++;
    }
}

static void serve_forever(lab_socket listener)
{
    struct lab_client_list clients = {NULL, NULL, 0};
    struct pollfd *entries = NULL;
    size_t capacity = 0;
    long long accept_again_at = 0; /* out of descriptors: leave the listener out until then */
    for (;;) {
        long long pause_left = accept_again_at - lab_now_ms();
        if (pause_left > 0 && clients.count == 0) {
            lab_sleep_ms((int)pause_left); /* nobody to serve meanwhile (and Windows fails */
            continue;                      /* a wait for no socket at all) */
        }
        fill_entries(&entries, &capacity, listener, &clients);
        /* No timeout: the thread sleeps until a socket is ready, using no CPU at all. Only
         * while the listener is left out does it wake when the pause ends. */
        int ready = pause_left > 0 ? poll(entries + 1, clients.count, (int)pause_left) /* no 0 */
                                   : poll(entries, clients.count + 1, -1);
        if (ready < 0 && !lab_error_is_interrupt(lab_last_error())) {
            lab_die("poll", NULL, lab_last_error());
        }
        struct lab_echo_client *next;
        struct pollfd *entry = entries + 1; /* in the list's order; revents, not events */
        for (struct lab_echo_client *client = clients.first; ready > 0 && client; client = next) {
            next = client->next; /* serve_client may free this one */
            if ((entry++)->revents != 0) {
                serve_client(&clients, client);
            }
        }
        /* Newcomers last: this round asked nothing about them, and none of them can take the
         * descriptor number of a client dropped above while the walk still reads the answers. */
        if (ready > 0 && pause_left <= 0 && entries[0].revents != 0 &&
            accept_clients(listener, &clients)) {
            accept_again_at = lab_now_ms() + LAB_ACCEPT_PAUSE_MS; /* not a sleep: serve on */
        }
    }
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
    lab_server_arguments(argc, argv, 0, &port, &host);
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* lesson 03's policy: a send() to a departed client fails */
#endif
    lab_socket listener = lab_listen(host, port);
    if (lab_set_nonblocking(listener) != 0) { /* readiness may be stale: see README.md */
        lab_die("set non-blocking", NULL, lab_last_error());
    }
    lab_announce_listening(listener);
    serve_forever(listener);
}
