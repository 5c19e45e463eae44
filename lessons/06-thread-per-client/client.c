/*
 * Lesson 06 - thread per client: the echo client, the same as lesson 03's by design.
 *
 * Threads are the server's business; a client cannot tell a threaded server from an
 * iterative one except that it is served at once. So this is lesson 03's client, with
 * its getaddrinfo loop now lab_connect() from common/ and its echo loop lab_echo_stdin().
 * Start several of them in several terminals: every one is answered while the others
 * are still connected (lesson 03's server would answer only the first).
 *
 * Run:    build/lessons/06-thread-per-client/client [HOST [PORT]]   (default 127.0.0.1 5050)
 * Before: 05-nonblocking-many (same client as 03-iterative-server).    Next: 07-thread-pool.
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
