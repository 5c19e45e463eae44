/*
 * Lesson 07 - thread pool: the echo client, the same as lesson 06's by design.
 *
 * The pool is the server's business; this lesson changes only the server. Start more of
 * these clients than the server has workers and leave them connected without typing: the
 * next client's lines get no answer until one of them leaves, because each worker stays
 * with its client until the client goes (lesson 06's server would answer at once).
 *
 * Run:    build/lessons/07-thread-pool/client [HOST [PORT]]   (default 127.0.0.1 5050)
 * Before: 06-thread-per-client (same client).    Next: 08-select.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>

static void print_usage(void)
{
    printf("usage: client [HOST [PORT]]\n"
           "Connects to an echo server at HOST:PORT (default %s %s); HOST may be a name,\n"
           "an IPv4 or an IPv6 address. Sends each line of stdin, prints each answer.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
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
    lab_client_arguments(argc, argv, 0, &host, &port);
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* the same policy as the server: errors, not signals */
#endif
    lab_socket server = lab_connect(host, port); /* lesson 03's getaddrinfo loop */
    lab_announce_connected(server);
    int status = lab_echo_stdin(server); /* lesson 02's client loop */
    lab_close(server);
    return status;
}
