/*
 * Lesson 03 - the iterative server: the echo client, now by name and for IPv6 too.
 *
 * Shows the client side of getaddrinfo(): a name such as "localhost" may stand for
 * several addresses (often ::1 and 127.0.0.1); try each until one accepts. A client that
 * tries only the first would fail whenever the server listens on the other family.
 * The rest is lesson 02's client loop, now lab_echo_stdin() in common/.
 *
 * Run:    build/lessons/03-iterative-server/client [HOST [PORT]]   (default 127.0.0.1 5050)
 *         e.g. client ::1 5050   or   client localhost 5050
 * Before: 02-byte-streams.    Next: 04-nonblocking-server.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PORT "5050"
#define DEFAULT_HOST "127.0.0.1"

static void print_usage(void)
{
    printf("usage: client [HOST [PORT]]\n"
           "Connects to an echo server at HOST:PORT (default %s %s); HOST may be a name,\n"
           "an IPv4 or an IPv6 address. Sends each line of stdin, prints each answer.\n",
           DEFAULT_HOST, DEFAULT_PORT);
}

/* Resolves host:port and connects to the first address that accepts. */
static lab_socket connect_to_server(const char *host, const char *port)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *addresses;
    int status = getaddrinfo(host, port, &hints, &addresses);
    if (status != 0) {
        fprintf(stderr, "client: getaddrinfo %s: %s\n", host, gai_strerror(status));
        exit(1);
    }
    char where[LAB_ADDRESS_TEXT] = "?";
    int error_code = 0;
    for (struct addrinfo *address = addresses; address != NULL; address = address->ai_next) {
        lab_address_text(address->ai_addr, where, sizeof where);
        lab_socket server = socket(address->ai_family, address->ai_socktype, address->ai_protocol);
        if (!lab_socket_ok(server)) {
            error_code = lab_last_error();
            continue;
        }
        if (connect(server, address->ai_addr, (socklen_t)address->ai_addrlen) == 0) {
            freeaddrinfo(addresses);
            printf("connected to %s\n", where);
            return server;
        }
        error_code = lab_last_error(); /* refused here: maybe the next address listens */
        lab_close(server);
    }
    freeaddrinfo(addresses);
    lab_die("connect", where, error_code);
}

int main(int argc, char **argv)
{
    lab_startup("client");
    if (lab_wants_help(argc, argv)) {
        print_usage();
        return 0;
    }
    const char *host = argc > 1 ? argv[1] : DEFAULT_HOST;
    const char *port = argc > 2 ? argv[2] : DEFAULT_PORT;
    unsigned short port_number;
    if (argc > 3) {
        lab_usage_error("too many arguments", NULL);
    }
    if (lab_parse_port(port, &port_number) != 0) {
        lab_usage_error("invalid port (expected 0-65535)", port);
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* the same policy as the server: errors, not signals */
#endif
    lab_socket server = connect_to_server(host, port);
    int status = lab_echo_stdin(server); /* lesson 02's client loop, now in common/ */
    lab_close(server);
    return status;
}
