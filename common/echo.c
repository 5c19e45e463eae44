/*
 * echo.c - the echo client's loop of lesson 02: send a typed line, print the answer.
 * Lock-step: each line waits for its answer, so answers print in the order sent.
 */
#include "lab.h"

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
