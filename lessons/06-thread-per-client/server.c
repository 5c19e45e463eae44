/*
 * Lesson 06 - thread per client: every accepted client gets a thread of its own.
 *
 * Shows the one change that lets lesson 03's iterative server serve clients at the same
 * time: the accept loop no longer serves the client itself; it hands the client to a new
 * thread and goes straight back to accept(). What the thread runs is lesson 03's
 * serve_client(), unchanged, now lab_serve_echo_client() in common/.
 * What the change brings with it:
 *   - passing the socket safely: each thread gets its own heap block (socket and address
 *     text) that nobody else touches, and frees it when the client is gone;
 *   - shared state under a lock: the number of connected clients, client_count, changes in
 *     the accept loop and in every thread, so only while holding client_count_lock;
 *   - a thread that cannot start costs one client, never the server;
 *   - out of descriptors (lab_error_is_out_of_descriptors), the accept loop pauses and
 *     tries again instead of ending as lesson 03's does: here the threads give
 *     descriptors back as their clients leave.
 * lab_listen() is lesson 03's getaddrinfo/SO_REUSEADDR/bind/listen, now in common/.
 *
 * Run:    build/lessons/06-thread-per-client/server [PORT [BIND-ADDRESS]]   (5050 127.0.0.1)
 * Before: 05-nonblocking-many (diff against 03-iterative-server to see this lesson's idea).
 * Next:   07-thread-pool.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCEPT_RETRY_PAUSE_MS 100 /* out of descriptors: wait this long for a client to leave */

/* Everything one client's thread needs. The accept loop fills a fresh one per client and
 * gives it away: from then on only that thread reads it, and that thread frees it. */
struct client {
    lab_socket socket;
    char peer[LAB_ADDRESS_TEXT]; /* "ADDR:PORT", for messages */
};

/* Shared by the accept loop and every client thread: read or change it only while holding
 * client_count_lock. Without the lock two "++"s at once can lose one (a data race). */
static lab_mutex client_count_lock;
static int client_count;

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS]]\n"
           "Echo server: serves every client at once, each on its own thread, on\n"
           "BIND-ADDRESS:PORT (default %s:%s; port 0 picks a free port). BIND-ADDRESS may\n"
           "be a name (localhost), an IPv4 or an IPv6 address (::1, or :: for every interface).\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

/* Counts a client in and says so. The line is printed under the lock too, so the counts
 * on stdout appear in the order they happened; each line is one printf() call, which
 * POSIX stdio (and the Windows C runtime) lock as a whole: lines never mix. */
static void client_arrived(const char *peer)
{
    lab_mutex_lock(&client_count_lock);
    client_count++;
    printf("client connected from %s (%d connected)\n", peer, client_count);
    lab_mutex_unlock(&client_count_lock);
}

/* Counts a client out and says so; called once for every client_arrived(). */
static void client_left(const char *peer)
{
    lab_mutex_lock(&client_count_lock);
    client_count--;
    printf("client %s disconnected (%d connected)\n", peer, client_count);
    lab_mutex_unlock(&client_count_lock);
}

/* The body of a client's thread: it owns the client, so it closes and frees it. Nothing
 * here may end the process (no lab_die, no exit): that would end every other client too. */
static void client_thread(void *argument)
{
    struct client *client = argument;
    lab_serve_echo_client(client->socket, client->peer); /* lesson 03's serve_client() */
    lab_close(client->socket);
    client_left(client->peer);
    free(client);
}

/* Hands an accepted client to a new thread. If no memory or no thread is to be had (too
 * many threads, no address space left for another stack), only this client is turned
 * away - closed at once, with a warning - and the accept loop goes on. */
static void start_client_thread(lab_socket accepted, const char *peer)
{
    client_arrived(peer);
    struct client *client = malloc(sizeof *client);
    if (client != NULL) {
        client->socket = accepted;
        snprintf(client->peer, sizeof client->peer, "%s", peer);
        if (lab_thread_start(client_thread, client) == 0) {
            return; /* the block belongs to the thread now: not one more look at it here */
        }
        free(client); /* the thread never ran, so the block is still ours */
    }
    fprintf(stderr, "server: cannot start a thread for client %s: closing it\n", peer);
    lab_close(accepted);
    client_left(peer);
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
    lab_server_arguments(argc, argv, 0, &port, &host); /* lesson 03's checks, in common/ */
#ifdef SIGPIPE
    /* The policy: a send() to a client that has closed raises SIGPIPE, whose default
     * action ends the whole server. Ignored, the send() fails with EPIPE and only that
     * client's loop ends. */
    signal(SIGPIPE, SIG_IGN);
#endif
    lab_mutex_init(&client_count_lock); /* before the first thread can exist */
    lab_socket listener = lab_listen(host, port);
    lab_announce_listening(listener);

    for (;;) {
        struct sockaddr_storage client_address; /* big enough for IPv4 and IPv6 */
        socklen_t client_address_size = sizeof client_address;
        lab_socket client =
            accept(listener, (struct sockaddr *)&client_address, &client_address_size);
        if (!lab_socket_ok(client)) {
            int error_code = lab_last_error();
            /* EINTR, ECONNABORTED (the client left before we accepted it), even EMFILE:
             * one failed accept is no reason to stop serving everybody else. */
            lab_warn("accept", NULL, error_code);
            if (lab_error_is_out_of_descriptors(error_code)) {
                lab_sleep_ms(ACCEPT_RETRY_PAUSE_MS); /* retrying at once would spin */
            }
            continue;
        }
        char peer[LAB_ADDRESS_TEXT];
        lab_address_text((struct sockaddr *)&client_address, peer, sizeof peer);
        /* The thread gets a copy of the socket's value in a block of its own, never
         * &client: this variable is overwritten by the next accept(), maybe before the
         * new thread has read it. */
        start_client_thread(client, peer);
    }
}
