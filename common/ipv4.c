/*
 * ipv4.c - lesson 01's listener, for lesson 02, whose idea lies elsewhere: the command line
 * "server [PORT [BIND-ADDRESS]]" read into an IPv4 sockaddr_in, then socket, bind, listen.
 * Lesson 03 replaces it with getaddrinfo() and names (resolve.c).
 */
#include "lab.h"

#include <string.h>

#define DEFAULT_PORT 5050
#define DEFAULT_ADDRESS "127.0.0.1"

/* Reads arguments into *address (IPv4 only); exits on bad input. */
static void parse_arguments(int argc, char **argv, struct sockaddr_in *address)
{
    unsigned short port = DEFAULT_PORT;
    const char *host = DEFAULT_ADDRESS;
    if (argc > 3) {
        lab_usage_error("too many arguments", NULL);
    }
    if (argc > 1 && lab_parse_port(argv[1], &port) != 0) {
        lab_usage_error("invalid port (expected 0-65535)", argv[1]);
    }
    if (argc > 2) {
        host = argv[2];
    }
    memset(address, 0, sizeof *address);
    address->sin_family = AF_INET;
    address->sin_port = htons(port); /* network byte order */
    if (inet_pton(AF_INET, host, &address->sin_addr) != 1) {
        lab_usage_error("not an IPv4 address (lesson 03 adds names and IPv6)", host);
    }
}

/* socket + bind + listen: returns a socket that waits for connections. */
static lab_socket open_listener(const struct sockaddr_in *address)
{
    char where[LAB_ADDRESS_TEXT];
    lab_address_text((const struct sockaddr *)address, where, sizeof where);
    lab_socket listener = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (!lab_socket_ok(listener)) {
        lab_die("socket", NULL, lab_last_error());
    }
    if (bind(listener, (const struct sockaddr *)address, sizeof *address) != 0) {
        lab_die("bind", where, lab_last_error());
    }
    if (listen(listener, 1) != 0) { /* one client at a time: a backlog of 1 */
        lab_die("listen", where, lab_last_error());
    }
    return listener;
}

lab_socket lab_listen_ipv4(int argc, char **argv)
{
    struct sockaddr_in address;
    parse_arguments(argc, argv, &address);
    return open_listener(&address);
}
