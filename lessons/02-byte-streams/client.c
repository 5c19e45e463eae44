/*
 * Lesson 02 - byte streams and framing: the echo client.
 *
 * Sends each line typed on stdin and prints the line the server sends back. It uses the
 * two pieces the server shows in full, from common/: lab_send_all() to send every byte,
 * and lab_read_line() to read exactly one line whatever way TCP split it. This client
 * works with every echo server in the lab (lessons 02 to 07).
 *
 * Run:    build/lessons/02-byte-streams/client [HOST [PORT]]   (default 127.0.0.1 5050)
 *         e.g. printf 'one\ntwo\n' | build/lessons/02-byte-streams/client
 * Before: 01-blocking-chat.    Next: 03-iterative-server.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_PORT 5050
#define DEFAULT_HOST "127.0.0.1"

/* Typed lines may be longer than the server's limit, to see its answer to them. */
#define INPUT_MAX (4 * LAB_LINE_MAX)

static void print_usage(void)
{
    printf("usage: client [HOST [PORT]]\n"
           "Connects to an echo server at HOST:PORT (default %s:%d; an IPv4 address),\n"
           "sends each line of stdin and prints the server's answer to it.\n",
           DEFAULT_HOST, DEFAULT_PORT);
}

/* socket + connect to an IPv4 address, as in lesson 01. */
static lab_socket connect_to_server(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : DEFAULT_HOST;
    unsigned short port = DEFAULT_PORT;
    if (argc > 3) {
        lab_usage_error("too many arguments", NULL);
    }
    if (argc > 2 && lab_parse_port(argv[2], &port) != 0) {
        lab_usage_error("invalid port (expected 0-65535)", argv[2]);
    }
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
        lab_usage_error("not an IPv4 address (lesson 03 adds names and IPv6)", host);
    }
    char where[LAB_ADDRESS_TEXT];
    lab_address_text((struct sockaddr *)&address, where, sizeof where);
    lab_socket server = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (!lab_socket_ok(server)) {
        lab_die("socket", NULL, lab_last_error());
    }
    if (connect(server, (struct sockaddr *)&address, sizeof address) != 0) {
        lab_die("connect", where, lab_last_error());
    }
    printf("connected to %s\n", where);
    return server;
}

/* Sends each stdin line and prints the reply; returns 0, or 1 if the connection failed. */
static int echo_stdin(lab_socket server)
{
    static char typed[INPUT_MAX + 2]; /* static: too big to want on the stack */
    struct lab_line_reader reader;
    lab_line_reader_init(&reader);
    char reply[LAB_LINE_MAX + 1];
    size_t reply_length;
    int typed_length;
    while ((typed_length = lab_read_stdin_line(typed, sizeof typed - 1)) >= 0) {
        size_t length = (size_t)typed_length; /* not strlen(): the line may hold a '\0' */
        typed[length] = '\n';
        if (lab_send_all(server, typed, length + 1) != 0) {
            lab_warn("send", NULL, lab_last_error());
            return 1;
        }
        enum lab_line_status status = lab_read_line(&reader, server, reply, &reply_length);
        if (status == LAB_LINE_CLOSED) {
            printf("server closed the connection\n");
            return 1;
        }
        if (status == LAB_LINE_ERROR) {
            lab_warn("recv", NULL, lab_last_error());
            return 1;
        }
        if (status == LAB_LINE_TOO_LONG) {
            printf("(the server's reply was longer than %d bytes)\n", LAB_LINE_MAX);
            continue;
        }
        fwrite(reply, 1, reply_length, stdout); /* the reply's own bytes, '\0's included */
        putchar('\n');
    }
    return 0;
}

int main(int argc, char **argv)
{
    lab_startup("client");
    if (lab_wants_help(argc, argv)) {
        print_usage();
        return 0;
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN);
#endif
    lab_socket server = connect_to_server(argc, argv);
    int status = echo_stdin(server);
    lab_close(server);
    return status;
}
