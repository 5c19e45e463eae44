/*
 * stream.c - TCP is a byte stream: one send() may arrive as many recv()s and many sends
 * as one recv(). These two helpers are what lesson 02 teaches: send until every byte is
 * gone, and cut the incoming stream into lines, however the bytes were split.
 */
#include "lab.h"

#include <limits.h>
#include <string.h>

int lab_send_all(lab_socket s, const void *data, size_t len)
{
    const char *next = data;
    while (len > 0) {
        /* Winsock's send() takes an int length; never ask for more than that. */
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        lab_io_size sent = send(s, next, chunk, 0);
        if (sent < 0) {
            if (lab_error_is_interrupt(lab_last_error())) {
                continue;
            }
            return -1;
        }
        next += sent; /* a short send is normal: send the rest next time round */
        len -= (size_t)sent;
    }
    return 0;
}

void lab_line_reader_init(struct lab_line_reader *reader)
{
    reader->used = 0;
    reader->discarding = 0;
}

/* Drops the first count bytes, keeping what follows them for the next line. */
static void drop_front(struct lab_line_reader *reader, size_t count)
{
    memmove(reader->bytes, reader->bytes + count, reader->used - count);
    reader->used -= count;
}

enum lab_line_status lab_line_take(struct lab_line_reader *reader, char *line, size_t *length)
{
    char *newline = memchr(reader->bytes, '\n', reader->used);
    if (reader->discarding) {
        if (newline == NULL) {
            reader->used = 0; /* still inside the over-long line: keep nothing */
            return LAB_LINE_NEED_MORE;
        }
        drop_front(reader, (size_t)(newline - reader->bytes) + 1);
        reader->discarding = 0;
        newline = memchr(reader->bytes, '\n', reader->used);
    }
    if (newline == NULL) {
        if (reader->used < sizeof reader->bytes) {
            return LAB_LINE_NEED_MORE;
        }
        /* Full and no newline: the line is too long. Forget it and skip to its end. */
        reader->used = 0;
        reader->discarding = 1;
        return LAB_LINE_TOO_LONG;
    }
    size_t consumed = (size_t)(newline - reader->bytes) + 1;
    size_t line_length = consumed - 1;
    if (line_length > 0 && reader->bytes[line_length - 1] == '\r') {
        line_length--; /* telnet and Windows tools end lines with "\r\n" */
    }
    if (line_length > LAB_LINE_MAX) {
        drop_front(reader, consumed);
        return LAB_LINE_TOO_LONG;
    }
    memcpy(line, reader->bytes, line_length);
    line[line_length] = '\0'; /* for printing; the line may itself hold '\0' bytes */
    *length = line_length;
    drop_front(reader, consumed);
    return LAB_LINE_READY;
}

lab_io_size lab_line_fill(struct lab_line_reader *reader, lab_socket s)
{
    size_t space = sizeof reader->bytes - reader->used;
    for (;;) {
        lab_io_size received = recv(s, reader->bytes + reader->used, (int)space, 0);
        if (received < 0 && lab_error_is_interrupt(lab_last_error())) {
            continue;
        }
        if (received > 0) {
            reader->used += (size_t)received;
        }
        return received;
    }
}

enum lab_line_status lab_read_line(struct lab_line_reader *reader, lab_socket s, char *line,
                                   size_t *length)
{
    for (;;) {
        enum lab_line_status status = lab_line_take(reader, line, length);
        if (status != LAB_LINE_NEED_MORE) {
            return status;
        }
        lab_io_size received = lab_line_fill(reader, s);
        if (received == 0) {
            return LAB_LINE_CLOSED; /* a partial line without its "\n" is dropped */
        }
        if (received < 0) {
            return LAB_LINE_ERROR;
        }
    }
}
