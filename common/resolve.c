/*
 * resolve.c - listening and connecting by name, for IPv4 and IPv6 alike (lesson 03).
 * getaddrinfo() may return several addresses ("localhost" is often ::1 and 127.0.0.1);
 * try each in turn until one works.
 */
#include "lab.h"

#include <stdio.h>
#include <stdlib.h>

/* Resolves host:port for a TCP socket; passive means "for bind()". Exits on failure. */
static struct addrinfo *resolve(const char *host, const char *port, int passive)
{
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC; /* IPv4 or IPv6, whichever the name has */
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    struct addrinfo *addresses = NULL;
    int status = getaddrinfo(host, port, &hints, &addresses);
    if (status != 0) {
        fprintf(stderr, "%s: getaddrinfo %s: %s\n", lab_program(), host, gai_strerror(status));
        exit(EXIT_FAILURE);
    }
    return addresses;
}

/* Makes a listening socket on one address; returns it, or LAB_INVALID_SOCKET with
 * *failed_call and *error_code saying what went wrong. */
static lab_socket listen_on(const struct addrinfo *address, const char **failed_call,
                            int *error_code)
{
    lab_socket listener = socket(address->ai_family, address->ai_socktype, address->ai_protocol);
    if (!lab_socket_ok(listener)) {
        *failed_call = "socket";
        *error_code = lab_last_error();
        return LAB_INVALID_SOCKET;
    }
    /* Without SO_REUSEADDR a restarted server cannot bind while old connections from its
     * last run sit in TIME_WAIT. (On Windows the flag means something else: see
     * docs/windows.md; there the default already allows the restart.) */
#ifndef _WIN32
    int on = 1;
    if (setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) {
        *failed_call = "setsockopt SO_REUSEADDR";
    } else
#endif
        if (bind(listener, address->ai_addr, (socklen_t)address->ai_addrlen) != 0) {
        *failed_call = "bind";
    } else if (listen(listener, SOMAXCONN) != 0) {
        *failed_call = "listen";
    } else {
        return listener;
    }
    *error_code = lab_last_error();
    lab_close(listener);
    return LAB_INVALID_SOCKET;
}

lab_socket lab_listen(const char *host, const char *port)
{
    struct addrinfo *addresses = resolve(host, port, 1);
    const char *failed_call = "getaddrinfo";
    int error_code = 0;
    char where[LAB_ADDRESS_TEXT];
    for (struct addrinfo *address = addresses; address != NULL; address = address->ai_next) {
        lab_address_text(address->ai_addr, where, sizeof where);
        lab_socket listener = listen_on(address, &failed_call, &error_code);
        if (lab_socket_ok(listener)) {
            freeaddrinfo(addresses);
            return listener;
        }
    }
    freeaddrinfo(addresses);
    lab_die(failed_call, where, error_code); /* the reason for the last address tried */
}

lab_socket lab_connect(const char *host, const char *port)
{
    struct addrinfo *addresses = resolve(host, port, 0);
    const char *failed_call = "connect";
    int error_code = 0;
    char where[LAB_ADDRESS_TEXT];
    for (struct addrinfo *address = addresses; address != NULL; address = address->ai_next) {
        lab_address_text(address->ai_addr, where, sizeof where);
        lab_socket s = socket(address->ai_family, address->ai_socktype, address->ai_protocol);
        if (!lab_socket_ok(s)) {
            failed_call = "socket";
            error_code = lab_last_error();
            continue;
        }
        if (connect(s, address->ai_addr, (socklen_t)address->ai_addrlen) == 0) {
            freeaddrinfo(addresses);
            return s;
        }
        failed_call = "connect";
        error_code = lab_last_error();
        lab_close(s);
    }
    freeaddrinfo(addresses);
    lab_die(failed_call, where, error_code);
}
