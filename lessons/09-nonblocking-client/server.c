/*
 * Lesson 09 - the non-blocking client: its partner, a plain iterative echo server.
 *
 * This lesson is about the client (client.c). The server is here so that the lesson can be
 * run on its own: it is lesson 03's iterative echo server, serving clients one after
 * another, with its getaddrinfo/SO_REUSEADDR/bind/listen code replaced by lab_listen()
 * from common/ - so it is short, and `diff` against lesson 06's server shows what a thread
 * per client adds. Any echo server of the lab or a Python peer from tests/peers/ works
 * with this lesson's client just as well.
 *
 * Why this partner, for a lesson about a connect timeout: a server that accepts its
 * clients cannot make a connect() time out. The kernel completes the handshake for it and
 * queues the connection (the listen backlog) before the program calls accept(); only a
 * host that does not answer, or on Linux a full queue, leaves a SYN unanswered. So the
 * timeout is shown against a full listener that never accepts (README.md). What a partner
 * can show is the other half, and an iterative server shows it best: while it serves one
 * client, a second client's connect() succeeds at once and its lines wait. "Connected" is
 * a fact about TCP, not about the program, and a connect timeout bounds the handshake,
 * never the wait for an answer. A server that serves everybody at once would hide that.
 *
 * Run:    build/lessons/09-nonblocking-client/server [PORT [BIND-ADDRESS]]   (5050 127.0.0.1)
 * Before: 08-select.    Next: 10-poll.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS]]\n"
           "Echo server: serves clients one after another, for ever, on BIND-ADDRESS:PORT\n"
           "(default %s:%s; port 0 picks a free port). BIND-ADDRESS may be a name\n"
           "(localhost), an IPv4 or an IPv6 address (::1, or :: for every interface).\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
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
    lab_socket listener = lab_listen(host, port);
    lab_announce_listening(listener);

    for (;;) {
        struct sockaddr_storage client_address; /* big enough for IPv4 and IPv6 */
        socklen_t client_address_size = sizeof client_address;
        lab_socket client =
            accept(listener, (struct sockaddr *)&client_address, &client_address_size);
        if (!lab_socket_ok(client)) {
            int error_code = lab_last_error();
            if (lab_error_is_out_of_descriptors(error_code)) {
                lab_die("accept", NULL, error_code); /* lesson 03: retrying would spin */
            }
            lab_warn("accept", NULL, error_code); /* e.g. ECONNABORTED: serve on */
            continue;
        }
        char peer[LAB_ADDRESS_TEXT];
        lab_address_text((struct sockaddr *)&client_address, peer, sizeof peer);
        printf("client connected from %s\n", peer);
        lab_serve_echo_client(client, peer); /* lesson 03's serve_client() */
        lab_close(client);
        printf("client %s disconnected\n", peer);
    }
}
