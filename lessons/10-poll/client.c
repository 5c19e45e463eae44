/*
 * Lesson 10 - poll: the echo client, lesson 03's by design.
 *
 * poll() changes how the server waits, not what a client sees: answers come as they
 * did from every echo server of the lab, only now one thread serves all clients at once
 * without polling. So this is lesson 03's client (lab_connect, lab_echo_stdin); start
 * several in several terminals, or leave one silent, and the others are still answered.
 * Lesson 09 makes the client itself wait with select().
 *
 * Run:    build/lessons/10-poll/client [HOST [PORT]]   (default 127.0.0.1 5050)
 * Before: 09-nonblocking-client (same client as 08).    Next: 11-epoll.
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
