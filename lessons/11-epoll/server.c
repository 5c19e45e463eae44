/*
 * Lesson 11 - epoll (Linux only): the kernel keeps the list of what each socket waits for.
 *
 * poll() hands the kernel every socket every round: a round costs as much as there are
 * clients, busy or idle. epoll_ctl() says once what a socket waits for (and again when
 * that changes); epoll_wait() returns only the ready ones, each with its client. Level-
 * triggered (default) reports a socket while it is ready, as poll() does; edge-triggered
 * reports each change once, so the round is repeated until idle ("would block").
 *
 * Run:    build/lessons/11-epoll/server [PORT [BIND-ADDRESS [level|edge]]]   (5050 ... level)
 * Before: 10-poll (diff against it).    Next: 12-chat-room.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define MAX_EVENTS 64 /* readiness reports taken per epoll_wait(); the rest come next time */
/* Edge-triggered, a client that never stops sending must not keep the loop from the
 * others: its turn ends after this many busy rounds, and the rest waits for the next. */
#define ROUNDS_PER_TURN 16

static int edge_triggered; /* from the command line, set once before the loop starts */

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS [level|edge]]]\n"
           "Echo server: one thread waits in epoll_wait() for every client at once, on\n"
           "BIND-ADDRESS:PORT (default %s:%s; port 0 picks a free port). It serves as many\n"
           "clients as the descriptor limit (ulimit -n) and memory allow. The last argument\n"
           "chooses level-triggered (the default) or edge-triggered readiness.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

/* Tells epoll what the client's socket waits for now (operation EPOLL_CTL_ADD for a
 * newcomer, EPOLL_CTL_MOD after a round, skipped if nothing changed); returns 0 or -1. */
static int watch(int epoll, struct lab_echo_client *client, int operation)
{
    enum lab_want want = lab_echo_wants(client);
    if (operation == EPOLL_CTL_MOD && (int)want == client->waiting_for) {
        return 0; /* the kernel already knows: one system call saved per round */
    }
    struct epoll_event event = {.events = edge_triggered ? EPOLLET : 0, .data.ptr = client};
    if (want & LAB_WANT_READ) {
        event.events |= EPOLLIN;
    }
    if (want & LAB_WANT_WRITE) {
        event.events |= EPOLLOUT;
    }
    if (epoll_ctl(epoll, operation, client->socket, &event) != 0) {
        lab_warn("epoll_ctl", client->peer, lab_last_error());
        return -1;
    }
    client->waiting_for = (int)want;
    return 0;
}

/* Accepts every waiting connection (the listener is non-blocking: lab_try_accept says
 * "nobody" when the queue is empty) and adds each one it can serve to the list. Returns 1
 * if a connection is left waiting because no descriptor is free, else 0. */
static int accept_clients(int epoll, lab_socket listener, struct lab_client_list *clients)
{
    char peer[LAB_ADDRESS_TEXT];
    lab_socket accepted;
    int out_of_descriptors;
    while (lab_socket_ok(accepted =
                             lab_try_accept(listener, peer, sizeof peer, &out_of_descriptors))) {
        struct lab_echo_client *client;
        if (lab_set_nonblocking(accepted) != 0) {
            lab_warn("set non-blocking", peer, lab_last_error());
            lab_close(accepted);
        } else if ((client = lab_client_add(clients, accepted, peer)) != NULL &&
                   watch(epoll, client, EPOLL_CTL_ADD) != 0) {
            lab_client_remove(clients, client);
        }
    }
    return out_of_descriptors;
}

/* Tells epoll what the listener waits for (operation EPOLL_CTL_ADD or EPOLL_CTL_MOD):
 * EPOLLIN, or nothing at all while no descriptor is free. Always level-triggered, with no
 * client (NULL): out of descriptors, connections stay queued and are reported again. */
static void watch_listener(int epoll, lab_socket listener, int operation, uint32_t events)
{
    struct epoll_event listening = {.events = events, .data.ptr = NULL};
    if (epoll_ctl(epoll, operation, listener, &listening) != 0) {
        lab_die("epoll_ctl", NULL, lab_last_error());
    }
}

/* Gives a ready client lesson 05's round - edge-triggered, rounds until it reports idle, or
 * up to ROUNDS_PER_TURN - then updates what epoll watches for it; drops it if it left. */
static void serve_client(int epoll, struct lab_client_list *clients, struct lab_echo_client *client)
{
    enum lab_round_result result;
    int rounds = 0;
    do {
        result = lab_echo_round(client);
    } while (edge_triggered && result == LAB_ROUND_BUSY && ++rounds < ROUNDS_PER_TURN);
    if (edge_triggered && result == LAB_ROUND_BUSY) {
        client->waiting_for = -1; /* not drained yet: MOD re-arms it, epoll reports it again */
    }
    if (result == LAB_ROUND_CLIENT_GONE || watch(epoll, client, EPOLL_CTL_MOD) != 0) {
        lab_client_remove(clients, client); /* closing the socket also leaves the epoll set */
    }
}

static void serve_forever(lab_socket listener)
{
    struct lab_client_list clients = {NULL, NULL, 0};
    int epoll = epoll_create1(0);
    if (epoll < 0) {
        lab_die("epoll_create1", NULL, lab_last_error());
    }
    watch_listener(epoll, listener, EPOLL_CTL_ADD, EPOLLIN);
    long long accept_again_at = 0; /* out of descriptors: the listener is ignored until then */
    for (;;) {
        long long pause_left = accept_again_at - lab_now_ms();
        if (accept_again_at != 0 && pause_left <= 0) {
            watch_listener(epoll, listener, EPOLL_CTL_MOD, EPOLLIN); /* the pause is over */
            accept_again_at = 0;
        }
        struct epoll_event events[MAX_EVENTS];
        /* No timeout: the thread sleeps until a socket is ready, using no CPU at all. Only
         * while the listener is ignored does it wake when the pause ends. */
        int ready = epoll_wait(epoll, events, MAX_EVENTS, accept_again_at ? (int)pause_left : -1);
        if (ready < 0 && !lab_error_is_interrupt(lab_last_error())) {
            lab_die("epoll_wait", NULL, lab_last_error());
        }
        int listener_ready = 0;
        for (int event = 0; event < ready; event++) { /* only the ready ones: O(ready) */
            struct lab_echo_client *client = events[event].data.ptr;
            if (client == NULL) {
                listener_ready = 1;
            } else {
                serve_client(epoll, &clients, client);
            }
        }
        /* Newcomers last: a client dropped above cannot be mistaken for one of them. */
        if (listener_ready && accept_clients(epoll, listener, &clients)) {
            accept_again_at = lab_now_ms() + LAB_ACCEPT_PAUSE_MS; /* not a sleep: serve on */
            watch_listener(epoll, listener, EPOLL_CTL_MOD, 0);
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
    lab_server_arguments(argc, argv, 1, &port, &host);
    if (argc > 3 && strcmp(argv[3], "edge") != 0 && strcmp(argv[3], "level") != 0) {
        lab_usage_error("invalid mode (expected level or edge)", argv[3]);
    }
    edge_triggered = argc > 3 && strcmp(argv[3], "edge") == 0;
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
