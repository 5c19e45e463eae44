/*
 * Lesson 03 - the iterative server: many clients, one after another, for ever.
 *
 * Shows what turns lesson 02's one-shot server into a real one:
 *   - getaddrinfo() instead of a hand-filled sockaddr_in: names ("localhost") and IPv6
 *     ("::1") work, and every address a name has is tried in turn;
 *   - SO_REUSEADDR, so a restarted server binds at once even while connections of its
 *     last run sit in TIME_WAIT;
 *   - an accept loop that no one client can end (reset, early close, garbage);
 *   - a SIGPIPE policy: ignored, so a send() to a departed client fails with EPIPE.
 * The line reader and send-all loop of lesson 02 now come from common/ (lab_read_line,
 * lab_send_all). While one client is served the next one waits, however long that takes:
 * lessons 05 (one thread, many clients) and 07 (a thread per client) fix that.
 *
 * Run:    build/lessons/03-iterative-server/server [PORT [BIND-ADDRESS]]   (5050 127.0.0.1)
 *         e.g. server 5050 ::1   or   server 0 localhost
 * Before: 02-byte-streams.    Next: 04-nonblocking-server.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PORT "5050"
#define DEFAULT_ADDRESS "127.0.0.1"

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS]]\n"
           "Echo server: serves clients one after another, for ever, on BIND-ADDRESS:PORT\n"
           "(default %s:%s; port 0 picks a free port). BIND-ADDRESS may be a name\n"
           "(localhost), an IPv4 or an IPv6 address (::1, or :: for every interface).\n",
           DEFAULT_ADDRESS, DEFAULT_PORT);
}

/* Makes one address into a listening socket; on failure says which call failed, why. */
static lab_socket listen_on(const struct addrinfo *address, const char **failed_call,
                            int *error_code)
{
    lab_socket listener = socket(address->ai_family, address->ai_socktype, address->ai_protocol);
    if (!lab_socket_ok(listener)) {
        *failed_call = "socket";
        *error_code = lab_last_error();
        return LAB_INVALID_SOCKET;
    }
#ifndef _WIN32
    /* Without this, bind() fails with "Address already in use" for a minute or two after
     * a restart: the old connections' TIME_WAIT entries still hold the port. On Windows
     * SO_REUSEADDR would let another program steal a port in use, so it is not set there
     * (docs/windows.md). */
    int reuse = 1;
    if (setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse) != 0) {
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
    *error_code = lab_last_error(); /* read it before close() can change it */
    lab_close(listener);
    return LAB_INVALID_SOCKET;
}

/* Resolves host:port and listens on the first of its addresses that works. */
static lab_socket open_listener(const char *host, const char *port)
{
    struct addrinfo hints = {0};     /* every field we do not set: 0 or NULL */
    hints.ai_family = AF_UNSPEC;     /* IPv4 or IPv6: whatever host names */
    hints.ai_socktype = SOCK_STREAM; /* TCP */
    hints.ai_flags = AI_PASSIVE;     /* an address to bind(), not to connect() to */
    struct addrinfo *addresses = NULL;
    int status = getaddrinfo(host, port, &hints, &addresses);
    if (status != 0) {
        fprintf(stderr, "%s: getaddrinfo %s: %s\n", lab_program(), host, gai_strerror(status));
        exit(EXIT_FAILURE); /* gai_strerror(): getaddrinfo's codes are not errno values */
    }
    const char *failed_call = "bind";
    int error_code = 0;
    char where[LAB_ADDRESS_TEXT] = "?";
    for (struct addrinfo *address = addresses; address != NULL; address = address->ai_next) {
        lab_address_text(address->ai_addr, where, sizeof where);
        lab_socket listener = listen_on(address, &failed_call, &error_code);
        if (lab_socket_ok(listener)) {
            freeaddrinfo(addresses);
            return listener;
        }
    }
    freeaddrinfo(addresses);
    lab_die(failed_call, where, error_code);
}

/* True for accept() errors that will not go away by trying again at once: with no
 * descriptor left, the finished connection stays queued and accept() fails again at
 * once, and an iterative server holds no descriptor it could free. */
static int accept_error_is_fatal(int error_code)
{
#ifdef _WIN32
    return error_code == WSAEMFILE || error_code == WSAENOBUFS;
#else
    return error_code == EMFILE || error_code == ENFILE;
#endif
}

/* Echoes lines until the client leaves or a call fails (then warns, naming peer). */
static void serve_client(lab_socket client, const char *peer)
{
    struct lab_line_reader reader;
    lab_line_reader_init(&reader);
    char line[LAB_LINE_MAX + 2];
    size_t length;
    for (;;) {
        enum lab_line_status status = lab_read_line(&reader, client, line, &length);
        int sent;
        if (status == LAB_LINE_READY) {
            line[length] = '\n';
            sent = lab_send_all(client, line, length + 1);
        } else if (status == LAB_LINE_TOO_LONG) {
            sent = lab_send_all(client, LAB_LINE_TOO_LONG_REPLY, strlen(LAB_LINE_TOO_LONG_REPLY));
        } else if (status == LAB_LINE_CLOSED) {
            return;
        } else {
            lab_warn("recv", peer, lab_last_error()); /* e.g. reset by the client */
            return;
        }
        if (sent != 0) {
            lab_warn("send", peer, lab_last_error()); /* EPIPE: SIGPIPE is ignored */
            return;
        }
    }
}

int main(int argc, char **argv)
{
    lab_startup("server");
    if (lab_wants_help(argc, argv)) {
        print_usage();
        return 0;
    }
    const char *port = argc > 1 ? argv[1] : DEFAULT_PORT;
    const char *host = argc > 2 ? argv[2] : DEFAULT_ADDRESS;
    unsigned short port_number;
    if (argc > 3) {
        lab_usage_error("too many arguments", NULL);
    }
    if (lab_parse_port(port, &port_number) != 0) {
        lab_usage_error("invalid port (expected 0-65535)", port);
    }
#ifdef SIGPIPE
    /* The policy: a send() to a client that has closed raises SIGPIPE, whose default
     * action ends the whole server. Ignored, the send() fails with EPIPE and only that
     * client's loop ends. */
    signal(SIGPIPE, SIG_IGN);
#endif
    lab_socket listener = open_listener(host, port);
    lab_announce_listening(listener);

    for (;;) {
        struct sockaddr_storage client_address; /* big enough for IPv4 and IPv6 */
        socklen_t client_address_size = sizeof client_address;
        lab_socket client =
            accept(listener, (struct sockaddr *)&client_address, &client_address_size);
        if (!lab_socket_ok(client)) {
            int error_code = lab_last_error();
            if (accept_error_is_fatal(error_code)) {
                lab_die("accept", NULL, error_code); /* continuing would spin at full CPU */
            }
            /* EINTR, ECONNABORTED (the client left before we accepted it): one failed
             * accept is no reason to stop serving everybody else. */
            lab_warn("accept", NULL, error_code);
            continue;
        }
        char peer[LAB_ADDRESS_TEXT];
        lab_address_text((struct sockaddr *)&client_address, peer, sizeof peer);
        printf("client connected from %s\n", peer);
        serve_client(client, peer);
        lab_close(client);
        printf("client %s disconnected\n", peer);
    }
}
