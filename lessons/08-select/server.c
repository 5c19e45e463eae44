/*
 * Lesson 08 - select: one thread sleeps until one of many sockets is ready.
 *
 * Lesson 05 polled every client and paused when none had anything: CPU burnt, or replies
 * delayed. select() sleeps until a socket in its sets is ready. The sets are rebuilt each
 * round from what each client waits for (client_wants: write only while answers wait, else
 * select() returns at once, every round); a socket at or above FD_SETSIZE is turned away
 * before any FD_SET. Clients are found by pointer in a list; serving one is lesson 05's
 * round. Out of descriptors, the listener is left out of the sets for a while.
 *
 * Run:    build/lessons/08-select/server [PORT [BIND-ADDRESS]]   (default 5050 127.0.0.1)
 * Before: 07-thread-pool (diff against 05-nonblocking-many).    Next: 09-nonblocking-client.
 */
#ifdef _WIN32
#define FD_SETSIZE 1024 /* Winsock's default is 64 sockets per set; must precede winsock2.h */
#endif
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#ifndef _WIN32
#include <sys/select.h>
#include <time.h>
#endif

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS]]\n"
           "Echo server: one thread waits in select() for every client at once, on\n"
           "BIND-ADDRESS:PORT (default %s:%s; port 0 picks a free port). It serves as many\n"
           "clients as fit in an fd_set (FD_SETSIZE = %d) and turns the rest away.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT, FD_SETSIZE);
}

/* A POSIX fd_set is a bitmap indexed by descriptor; Winsock's an array of FD_SETSIZE
 * sockets, so there what counts is how many sockets: the clients and the listener. */
#ifdef _WIN32
#define FITS_IN_FD_SET(socket, client_count) ((client_count) + 1 < FD_SETSIZE)
#else
#define FITS_IN_FD_SET(socket, client_count) ((socket) < FD_SETSIZE)
#endif

/* Milliseconds on a clock that only goes forward: a pause must not stretch or vanish when
 * someone sets the wall clock (time() would). */
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
        if (!FITS_IN_FD_SET(accepted, clients->count)) { /* FD_SET past the set: corruption */
            fprintf(stderr, "server: client %s: socket %ld does not fit in an fd_set of %d\n", peer,
                    (long)accepted, FD_SETSIZE);
            lab_close(accepted);
        } else if (lab_set_nonblocking(accepted) != 0) {
            lab_warn("set non-blocking", peer, lab_last_error());
            lab_close(accepted);
        } else {
            lab_client_add(clients, accepted, peer);
        }
    }
    return out_of_descriptors;
}

/* What a client's socket waits for next. Writable only while answers wait: a socket with
 * room in its buffer is always writable, so asking for it with nothing to send wakes
 * select() at once, every round. Readable only while the next answer would fit (lesson 04's
 * backpressure: a client that does not read is not read either) and input has not ended.
 * This works because a round answers every whole line it can before it returns. */
static enum lab_want client_wants(const struct lab_echo_client *client)
{
    int want = 0;
    if (client->output != NULL) {
        want |= LAB_WANT_WRITE;
    }
    if (!client->input_ended &&
        (client->output == NULL || LAB_OUTPUT_MAX - client->output->used > LAB_LINE_MAX)) {
        want |= LAB_WANT_READ;
    }
    return (enum lab_want)want;
}

/* Gives a ready client lesson 05's round; drops it if it left or failed. */
static void serve_client(struct lab_client_list *clients, struct lab_echo_client *client)
{
    if (lab_echo_round(client) == LAB_ROUND_CLIENT_GONE) {
        lab_client_remove(clients, client);
    }
}

/* Fills the sets with the listener (unless it is left out: LAB_INVALID_SOCKET) and what
 * each client's socket waits for; returns the highest socket in them. */
static lab_socket fill_sets(lab_socket listener, const struct lab_client_list *clients,
                            fd_set *readable, fd_set *writable)
{
    FD_ZERO(readable);
    FD_ZERO(writable);
    lab_socket highest = 0;
    if (lab_socket_ok(listener)) {
        FD_SET(listener, readable);
        highest = listener;
    }
    for (struct lab_echo_client *client = clients->first; client != NULL; client = client->next) {
        enum lab_want want = client_wants(client);
        if (want & LAB_WANT_READ) {
            FD_SET(client->socket, readable);
        }
        if (want & LAB_WANT_WRITE) {
            FD_SET(client->socket, writable);
        }
        highest = client->socket > highest ? client->socket : highest;
    }
    return highest;
}

static void serve_forever(lab_socket listener)
{
    struct lab_client_list clients = {NULL, NULL, 0};
    long long accept_again_at = 0; /* out of descriptors: leave the listener out until then */
    for (;;) {
        long long pause_left = accept_again_at - now_ms();
        if (pause_left > 0 && clients.count == 0) {
            lab_sleep_ms((int)pause_left); /* nobody to serve meanwhile (and Windows fails */
            continue;                      /* a wait for no socket at all) */
        }
        fd_set readable, writable;
        lab_socket highest = fill_sets(pause_left > 0 ? LAB_INVALID_SOCKET : listener, &clients,
                                       &readable, &writable);
        /* No timeout: the thread sleeps until a socket is ready, using no CPU at all. Only
         * while the listener is left out does it wake when the pause ends. */
        /* select() looks at descriptors 0 .. highest (Winsock's fd_set is a list: ignored) */
        struct timeval pause = {(long)(pause_left / 1000), (long)(pause_left % 1000) * 1000};
        int ready =
            select((int)highest + 1, &readable, &writable, NULL, pause_left > 0 ? &pause : NULL);
        if (ready < 0 && !lab_error_is_interrupt(lab_last_error())) {
            lab_die("select", NULL, lab_last_error());
        }
        struct lab_echo_client *next;
        for (struct lab_echo_client *client = clients.first; ready > 0 && client; client = next) {
            next = client->next; /* serve_client may free this one */
            if (FD_ISSET(client->socket, &readable) || FD_ISSET(client->socket, &writable)) {
                serve_client(&clients, client);
            }
        }
        /* Newcomers last: this round asked nothing about them, and none of them can take the
         * descriptor number of a client dropped above while the walk still reads the answers. */
        if (ready > 0 && pause_left <= 0 && FD_ISSET(listener, &readable) &&
            accept_clients(listener, &clients)) {
            accept_again_at = now_ms() + LAB_ACCEPT_PAUSE_MS; /* not a sleep: serve on */
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
