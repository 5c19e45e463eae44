/*
 * echo.c - the echo client's loop of lesson 02: send a typed line, print the answer.
 * Lock-step: each line waits for its answer, so answers print in the order sent. And
 * lesson 03's whole client, for the lessons after it that change only the server.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define INPUT_MAX (4 * LAB_LINE_MAX) /* typed lines may exceed the server's limit */

int lab_echo_stdin(lab_socket server)
{
    static char typed[INPUT_MAX + 2];
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
        fwrite(reply, 1, reply_length, stdout);
        putchar('\n');
    }
    return 0;
}

static void print_client_usage(void)
{
    printf("usage: client [HOST [PORT]]\n"
           "Connects to an echo server at HOST:PORT (default %s %s); HOST may be a name,\n"
           "an IPv4 or an IPv6 address. Sends each line of stdin, prints each answer.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

int lab_echo_client_main(int argc, char **argv)
{
    lab_startup("client");
    if (lab_wants_help(argc, argv)) {
        print_client_usage();
        return 0;
    }
    const char *host;
    const char *port;
    lab_client_arguments(argc, argv, 0, &host, &port);
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* the same policy as the servers: errors, not signals */
#endif
    lab_socket server = lab_connect(host, port); /* lesson 03's getaddrinfo loop */
    lab_announce_connected(server);
    int status = lab_echo_stdin(server); /* lesson 02's client loop */
    lab_close(server);
    return status;
}
