/*
 * address.c - printing socket addresses as numbers, the same way for IPv4 and IPv6.
 * Numeric only: a reverse DNS lookup on every accept can stall a server for seconds.
 */
#include "lab.h"

#include <stdio.h>
#include <string.h>

const char *lab_address_text(const struct sockaddr *address, char *text, size_t text_size)
{
    char host[INET6_ADDRSTRLEN];
    unsigned short port;
    if (address->sa_family == AF_INET6) {
        const struct sockaddr_in6 *ipv6 = (const struct sockaddr_in6 *)address;
        inet_ntop(AF_INET6, &ipv6->sin6_addr, host, sizeof host);
        port = ntohs(ipv6->sin6_port);
        snprintf(text, text_size, "[%s]:%u", host, port); /* brackets: the port stays apart */
    } else if (address->sa_family == AF_INET) {
        const struct sockaddr_in *ipv4 = (const struct sockaddr_in *)address;
        inet_ntop(AF_INET, &ipv4->sin_addr, host, sizeof host);
        port = ntohs(ipv4->sin_port);
        snprintf(text, text_size, "%s:%u", host, port);
    } else {
        snprintf(text, text_size, "?");
    }
    return text;
}

const char *lab_local_address_text(lab_socket s, char *text, size_t text_size)
{
    struct sockaddr_storage local;
    socklen_t local_size = sizeof local;
    if (getsockname(s, (struct sockaddr *)&local, &local_size) != 0) {
        snprintf(text, text_size, "?");
        return text;
    }
    return lab_address_text((struct sockaddr *)&local, text, text_size);
}

void lab_announce_listening(lab_socket listener)
{
    /* With port 0 the kernel picks the port: only getsockname() knows which. */
    char text[LAB_ADDRESS_TEXT];
    printf("listening on %s\n", lab_local_address_text(listener, text, sizeof text));
    fflush(stdout);
}

void lab_announce_connected(lab_socket server)
{
    struct sockaddr_storage peer;
    socklen_t peer_size = sizeof peer;
    char text[LAB_ADDRESS_TEXT] = "?";
    if (getpeername(server, (struct sockaddr *)&peer, &peer_size) == 0) {
        lab_address_text((struct sockaddr *)&peer, text, sizeof text);
    }
    printf("connected to %s\n", text);
}
