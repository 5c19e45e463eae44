/*
 * Lesson 01 - blocking one-to-one chat: the server.
 *
 * Shows the server's calls in order - socket, bind, listen, accept, then recv and send
 * in turns, then close - with an IPv4 sockaddr_in and htons() in plain sight. It accepts
 * one client and takes turns with it: it prints the client's line, reads a reply from its
 * own stdin and sends that back. Either side ending (end of input, or closing) ends the
 * chat on both sides.
 *
 * Run:    build/lessons/01-blocking-chat/server [PORT [BIND-ADDRESS]]   (5050 127.0.0.1)
 *         then, in a second terminal: build/lessons/01-blocking-chat/client
 * Before: none, this is the first lesson.    Next: 02-byte-streams (framing).
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_PORT 5050
#define DEFAULT_ADDRESS "127.0.0.1"

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS]]\n"
           "Waits for one client on BIND-ADDRESS:PORT (default %s:%d; port 0 picks a free\n"
           "port), then chats: prints each line the client sends and sends back the line\n"
           "you type. End your input (Ctrl-D, or Ctrl-Z Enter on Windows) to finish.\n",
           DEFAULT_ADDRESS, DEFAULT_PORT);
}

/* Reads arguments into *address (IPv4 only in this lesson); exits on bad input. */
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
    /* Ports and addresses travel in network byte order (big-endian): htons converts. */
    address->sin_port = htons(port);
    if (inet_pton(AF_INET, host, &address->sin_addr) != 1) {
        lab_usage_error("not an IPv4 address (lesson 03 adds names and IPv6)", host);
    }
}

/* Prints "listening on ADDRESS:PORT", the line tests and scripts wait for. */
static void announce(lab_socket listener)
{
    /* With port 0 the kernel chose the port; getsockname() asks which. */
    struct sockaddr_in bound;
    socklen_t bound_size = sizeof bound;
    if (getsockname(listener, (struct sockaddr *)&bound, &bound_size) != 0) {
        lab_die("getsockname", NULL, lab_last_error());
    }
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &bound.sin_addr, host, sizeof host);
    printf("listening on %s:%u\n", host, ntohs(bound.sin_port)); /* ntohs: back to host order */
    fflush(stdout);
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
    /* The backlog bounds how many finished handshakes may wait for accept() (Linux
     * queues one more than asked). */
    if (listen(listener, 1) != 0) {
        lab_die("listen", where, lab_last_error());
    }
    return listener;
}

/* Receives one line, a byte at a time, into line (without its "\n"). A longer line is
 * cut to LAB_LINE_MAX bytes. Returns 1 for a line, 0 if the peer closed, -1 on error. */
static int receive_line(lab_socket peer, char *line)
{
    size_t length = 0;
    for (;;) {
        char byte;
        /* One byte per recv(): slow, but never fooled by how TCP cut the stream.
         * Lesson 02 reads many bytes at once and still finds the lines. */
        lab_io_size received = recv(peer, &byte, 1, 0);
        if (received == 0) {
            return 0;
        }
        if (received < 0) {
            return -1;
        }
        if (byte == '\n') {
            break;
        }
        if (length < LAB_LINE_MAX) {
            line[length++] = byte;
        }
    }
    if (length > 0 && line[length - 1] == '\r') {
        length--; /* telnet sends "\r\n" */
    }
    line[length] = '\0';
    return 1;
}

/* Sends length bytes of text and a "\n". send() may take fewer bytes than asked, so loop
 * until all are gone. */
static int send_line(lab_socket peer, const char *text, size_t length)
{
    char message[LAB_LINE_MAX + 2];
    memcpy(message, text, length); /* a length, not strlen(): the text may hold a '\0' */
    message[length] = '\n';
    int total = (int)length + 1;
    int sent_total = 0;
    while (sent_total < total) {
        lab_io_size sent = send(peer, message + sent_total, total - sent_total, 0);
        if (sent < 0) {
            return -1;
        }
        sent_total += (int)sent;
    }
    return 0;
}

/* Takes turns with one client until either side ends the chat. */
static void chat(lab_socket client, const char *peer)
{
    char line[LAB_LINE_MAX + 1];
    for (;;) {
        int status = receive_line(client, line);
        if (status == 0) {
            printf("client closed the connection\n");
            return;
        }
        if (status < 0) {
            lab_warn("recv", peer, lab_last_error());
            return;
        }
        printf("client: %s\n", line);
        int length = lab_read_stdin_line(line, sizeof line);
        if (length < 0) {
            printf("end of input: closing the chat\n");
            return;
        }
        if (send_line(client, line, (size_t)length) != 0) {
            lab_warn("send", peer, lab_last_error());
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
#ifdef SIGPIPE
    /* A send() to a client that has gone would raise SIGPIPE and kill us silently;
     * ignored, it fails with EPIPE instead. Lesson 03 explains this policy. */
    signal(SIGPIPE, SIG_IGN);
#endif
    struct sockaddr_in address;
    parse_arguments(argc, argv, &address);
    lab_socket listener = open_listener(&address);
    announce(listener);

    struct sockaddr_in client_address;
    socklen_t client_address_size = sizeof client_address;
    lab_socket client = accept(listener, (struct sockaddr *)&client_address, &client_address_size);
    if (!lab_socket_ok(client)) {
        lab_die("accept", NULL, lab_last_error());
    }
    lab_close(listener); /* one client only: stop accepting more */

    char peer[LAB_ADDRESS_TEXT];
    printf("client connected from %s\n",
           lab_address_text((struct sockaddr *)&client_address, peer, sizeof peer));
    chat(client, peer);
    lab_close(client);
    return 0;
}
