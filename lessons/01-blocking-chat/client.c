/*
 * Lesson 01 - blocking one-to-one chat: the client.
 *
 * Shows the client's calls in order - socket, connect, then send and recv in turns, then
 * close - with an IPv4 sockaddr_in and htons() in plain sight. It reads a line you type,
 * sends it, waits for the server's reply and prints it, and so on until either side ends.
 *
 * Run:    build/lessons/01-blocking-chat/client [HOST [PORT]]   (default 127.0.0.1 5050)
 *         after starting build/lessons/01-blocking-chat/server in another terminal.
 * Before: none, this is the first lesson.    Next: 02-byte-streams (framing).
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_PORT 5050
#define DEFAULT_HOST "127.0.0.1"

static void print_usage(void)
{
    printf("usage: client [HOST [PORT]]\n"
           "Connects to the lesson 01 server at HOST:PORT (default %s:%d; an IPv4\n"
           "address), sends each line you type and prints the server's reply.\n"
           "End your input (Ctrl-D, or Ctrl-Z Enter on Windows) to finish.\n",
           DEFAULT_HOST, DEFAULT_PORT);
}

/* Reads arguments into *address (IPv4 only in this lesson); exits on bad input. */
static void parse_arguments(int argc, char **argv, struct sockaddr_in *address)
{
    const char *host = DEFAULT_HOST;
    unsigned short port = DEFAULT_PORT;
    if (argc > 3) {
        lab_usage_error("too many arguments", NULL);
    }
    if (argc > 1) {
        host = argv[1];
    }
    if (argc > 2 && lab_parse_port(argv[2], &port) != 0) {
        lab_usage_error("invalid port (expected 0-65535)", argv[2]);
    }
    memset(address, 0, sizeof *address);
    address->sin_family = AF_INET;
    address->sin_port = htons(port); /* network byte order, as bind() used on the server */
    if (inet_pton(AF_INET, host, &address->sin_addr) != 1) {
        lab_usage_error("not an IPv4 address (lesson 03 adds names and IPv6)", host);
    }
}

/* socket + connect: returns a socket connected to the server. */
static lab_socket connect_to(const struct sockaddr_in *address)
{
    char where[LAB_ADDRESS_TEXT];
    lab_address_text((const struct sockaddr *)address, where, sizeof where);
    lab_socket server = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (!lab_socket_ok(server)) {
        lab_die("socket", NULL, lab_last_error());
    }
    /* connect() blocks until the three-way handshake is done, or fails. */
    if (connect(server, (const struct sockaddr *)address, sizeof *address) != 0) {
        lab_die("connect", where, lab_last_error());
    }
    printf("connected to %s\n", where);
    return server;
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
        length--;
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

/* Takes turns with the server: our line first, then its reply. */
static void chat(lab_socket server, const char *where)
{
    char line[LAB_LINE_MAX + 1];
    int length;
    while ((length = lab_read_stdin_line(line, sizeof line)) >= 0) {
        if (send_line(server, line, (size_t)length) != 0) {
            lab_warn("send", where, lab_last_error());
            return;
        }
        int status = receive_line(server, line);
        if (status == 0) {
            printf("server closed the connection\n");
            return;
        }
        if (status < 0) {
            lab_warn("recv", where, lab_last_error());
            return;
        }
        printf("server: %s\n", line);
    }
}

int main(int argc, char **argv)
{
    lab_startup("client");
    if (lab_wants_help(argc, argv)) {
        print_usage();
        return 0;
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* a send() to a closed server fails instead of killing us */
#endif
    struct sockaddr_in address;
    parse_arguments(argc, argv, &address);
    lab_socket server = connect_to(&address);
    char where[LAB_ADDRESS_TEXT];
    chat(server, lab_address_text((struct sockaddr *)&address, where, sizeof where));
    lab_close(server); /* the server's recv() now returns 0: it sees us leave */
    return 0;
}
