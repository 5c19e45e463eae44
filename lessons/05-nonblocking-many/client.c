/*
 * Lesson 05 - many clients, one thread: the echo client, the same as lesson 04's by design.
 *
 * This lesson changes only the server. Start several of these clients in several terminals
 * at once: each is answered while the others stay connected, where lesson 04 made them
 * wait their turn. Lesson 09 makes the client non-blocking too.
 *
 * Run:    build/lessons/05-nonblocking-many/client [HOST [PORT]]   (default 127.0.0.1 5050)
 * Before: 04-nonblocking-server.    Next: 06-thread-per-client.
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
