/*
 * Lesson 02 - byte streams and framing: an echo server for one client.
 *
 * Shows that TCP carries a stream of bytes, not messages: one send() may arrive in many
 * recv()s and many sends in one recv(). The server answers each line with the same line,
 * correct however the bytes were cut, because of two pieces written out here in full:
 *   read_line()  - keep a per-connection buffer, receive as much as fits, hand out one
 *                  line at a time and keep the bytes after it for the next call;
 *   send_all()   - send() may take only part of the buffer; send the rest too.
 * A line longer than LAB_LINE_MAX (1024) bytes gets LAB_LINE_TOO_LONG_REPLY and is skipped.
 * Lesson 01's socket, bind and listen now come from common/ (lab_listen_ipv4).
 *
 * Run:    build/lessons/02-byte-streams/server [PORT [BIND-ADDRESS]]   (5050 127.0.0.1)
 *         then: build/lessons/02-byte-streams/client   (or: nc 127.0.0.1 5050)
 * Before: 01-blocking-chat.    Next: 03-iterative-server (many clients, one at a time).
 */
#include "lab.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_PORT 5050
#define DEFAULT_ADDRESS "127.0.0.1"

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS]]\n"
           "Echo server for one client on BIND-ADDRESS:PORT (default %s:%d; port 0 picks\n"
           "a free port). Answers every line with the same line; a line over %d bytes is\n"
           "answered with an error line. Exits when the client disconnects.\n",
           DEFAULT_ADDRESS, DEFAULT_PORT, LAB_LINE_MAX);
}

/* One connection's bytes that have arrived but are not yet handed out as lines. */
struct line_reader {
    char bytes[LAB_LINE_MAX + 2]; /* the longest line plus "\r\n" */
    size_t used;
    int discarding; /* 1 while skipping the rest of an over-long line */
};

/* Removes the first count bytes, keeping whatever came after them. */
static void drop_front(struct line_reader *reader, size_t count)
{
    memmove(reader->bytes, reader->bytes + count, reader->used - count);
    reader->used -= count;
}

/* Hands out one buffered line, if there is a whole one. */
static enum lab_line_status take_line(struct line_reader *reader, char *line, size_t *length)
{
    char *newline = memchr(reader->bytes, '\n', reader->used);
    if (reader->discarding) {
        if (newline == NULL) {
            reader->used = 0; /* still inside the over-long line */
            return LAB_LINE_NEED_MORE;
        }
        drop_front(reader, (size_t)(newline - reader->bytes) + 1);
        reader->discarding = 0;
        newline = memchr(reader->bytes, '\n', reader->used);
    }
    if (newline == NULL) {
        if (reader->used < sizeof reader->bytes) {
            return LAB_LINE_NEED_MORE; /* half a line: wait for the rest */
        }
        reader->used = 0; /* full, and still no end: too long */
        reader->discarding = 1;
        return LAB_LINE_TOO_LONG;
    }
    size_t consumed = (size_t)(newline - reader->bytes) + 1;
    size_t line_length = consumed - 1;
    if (line_length > 0 && reader->bytes[line_length - 1] == '\r') {
        line_length--; /* telnet sends "\r\n" */
    }
    if (line_length > LAB_LINE_MAX) {
        drop_front(reader, consumed);
        return LAB_LINE_TOO_LONG;
    }
    memcpy(line, reader->bytes, line_length);
    line[line_length] = '\0';
    *length = line_length; /* the length, not strlen(): a line may contain '\0' */
    drop_front(reader, consumed);
    return LAB_LINE_READY;
}

/* Receives as much as fits in one recv(): half a line, or ten. Returns what recv() did. */
static lab_io_size fill(struct line_reader *reader, lab_socket peer)
{
    size_t space = sizeof reader->bytes - reader->used;
    for (;;) {
        lab_io_size received = recv(peer, reader->bytes + reader->used, (int)space, 0);
        if (received < 0 && lab_error_is_interrupt(lab_last_error())) {
            continue; /* a signal arrived before any byte did: just retry */
        }
        if (received > 0) {
            reader->used += (size_t)received;
        }
        return received;
    }
}

/* Returns the next line, receiving more bytes only when no whole line is buffered. */
static enum lab_line_status read_line(struct line_reader *reader, lab_socket peer, char *line,
                                      size_t *length)
{
    for (;;) {
        enum lab_line_status status = take_line(reader, line, length);
        if (status != LAB_LINE_NEED_MORE) {
            return status;
        }
        lab_io_size received = fill(reader, peer);
        if (received == 0) {
            return LAB_LINE_CLOSED;
        }
        if (received < 0) {
            return LAB_LINE_ERROR;
        }
    }
}

/* Sends all len bytes. send() returns how many it took, which may be fewer than asked:
 * the seed's send(s, buf, BUFSIZ, 0) both ignores that and sends bytes past the text. */
static int send_all(lab_socket peer, const char *data, size_t len)
{
    while (len > 0) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len; /* Winsock's send() takes an int */
        lab_io_size sent = send(peer, data, chunk, 0);
        if (sent < 0) {
            if (lab_error_is_interrupt(lab_last_error())) {
                continue;
            }
            return -1;
        }
        data += sent;
        len -= (size_t)sent;
    }
    return 0;
}

/* Echoes lines until the client leaves or a call fails (then warns, naming peer). */
static void serve_client(lab_socket client, const char *peer)
{
    struct line_reader reader = {.used = 0, .discarding = 0};
    char line[LAB_LINE_MAX + 2];
    size_t length;
    for (;;) {
        enum lab_line_status status = read_line(&reader, client, line, &length);
        int sent;
        if (status == LAB_LINE_READY) {
            line[length] = '\n';
            sent = send_all(client, line, length + 1);
        } else if (status == LAB_LINE_TOO_LONG) {
            sent = send_all(client, LAB_LINE_TOO_LONG_REPLY, strlen(LAB_LINE_TOO_LONG_REPLY));
        } else if (status == LAB_LINE_CLOSED) {
            return;
        } else {
            lab_warn("recv", peer, lab_last_error()); /* e.g. reset by the client */
            return;
        }
        if (sent != 0) {
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
    lab_socket listener = lab_listen_ipv4(argc, argv); /* lesson 01's socket, bind, listen */
    lab_announce_listening(listener);

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
    serve_client(client, peer);
    printf("client %s disconnected\n", peer);
    lab_close(client);
    return 0;
}
