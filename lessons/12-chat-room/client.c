/*
 * Lesson 12 - the chat client: what you type goes to the room, and the room's lines appear
 * as they come, even while you are typing.
 *
 * Lesson 03's client waited for one answer per line; in a room, lines come whenever anybody
 * talks. So one poll() (lesson 10's call) waits for the keyboard and the server together.
 * The keyboard is lab_keyboard (common/keyboard.c, from lesson 09): stdin itself on POSIX,
 * on Windows a socket that a thread fills from stdin, since WSAPoll() takes only sockets.
 * Typed bytes wait in a struct lab_output until the socket takes them; end of input is a
 * half-close, and the room's last lines are still printed before the program ends.
 *
 * Run:    build/lessons/12-chat-room/client [HOST [PORT]]   (default 127.0.0.1 5050)
 * Before: 11-epoll (diff against 09-nonblocking-client).    Next: 13-socket-buffers.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#ifdef _WIN32
#define SHUT_WR SD_SEND /* Winsock's name for "no more sending" */
#endif

static void print_usage(void)
{
    printf("usage: client [HOST [PORT]]\n"
           "Joins the chat room at HOST:PORT (default %s %s): sends each line you type,\n"
           "prints the room's lines as they arrive. /nick NAME, /who, /quit; end of input\n"
           "(Ctrl-D, or Ctrl-Z Enter on Windows) leaves the room.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

struct session {
    lab_socket server;
    struct lab_keyboard keyboard;
    struct lab_line_reader lines; /* the room's lines, cut at "\n" */
    struct lab_output typed;      /* typed bytes the socket has not taken yet */
    char last_typed;              /* the last byte typed, '\n' if none */
    int input_ended;              /* end of input seen on the keyboard */
    int told_server;              /* ...and passed on to the server: shutdown() */
    int said_bye;                 /* the room answered /quit: its close is expected */
};

/* Moves what was typed into the output; at end of input, ends a last unfinished line. */
static void read_keyboard(struct session *session)
{
    char chunk[LAB_OUTPUT_MAX];
    size_t room = sizeof session->typed.bytes - session->typed.used - 1; /* 1 for a "\n" */
    long count = lab_keyboard_read(&session->keyboard, chunk, room);
    if (count > 0) {
        lab_output_append(&session->typed, chunk, (size_t)count); /* fits: count <= room */
        session->last_typed = chunk[count - 1];
        return;
    }
    session->input_ended = 1;
    if (session->last_typed != '\n') {
        lab_output_append(&session->typed, "\n", 1); /* the room takes only whole lines */
    }
}

/* Receives what the room sent and prints each whole line. Returns 1 while the connection
 * is open, 0 once the server has closed it, -1 on an error. */
static int print_room_lines(struct session *session)
{
    lab_io_size received = lab_line_fill(&session->lines, session->server);
    if (received <= 0) {
        if (received < 0 && lab_error_is_would_block(lab_last_error())) {
            return 1; /* readiness is a hint: nothing after all */
        }
        if (received < 0) {
            lab_warn("recv", NULL, lab_last_error());
        }
        return received == 0 ? 0 : -1;
    }
    char line[LAB_LINE_MAX + 1];
    size_t length;
    enum lab_line_status status;
    while ((status = lab_line_take(&session->lines, line, &length)) != LAB_LINE_NEED_MORE) {
        if (status == LAB_LINE_TOO_LONG) {
            printf("(a line longer than %d bytes from the room)\n", LAB_LINE_MAX);
            continue;
        }
        fwrite(line, 1, length, stdout);
        putchar('\n');
        session->said_bye = length == 5 && memcmp(line, "* bye", 5) == 0;
    }
    return 1;
}

/* One poll() over keyboard and server until the server closes; returns the exit status:
 * 0 if it closed after we left (end of input, or /quit answered "* bye"), 1 otherwise. */
static int converse(struct session *session)
{
    for (;;) {
        if (session->input_ended && session->typed.used == 0 && !session->told_server) {
            session->told_server = 1; /* every typed byte is out: now say we are done */
            if (shutdown(session->server, SHUT_WR) != 0) {
                lab_warn("shutdown", NULL, lab_last_error());
            }
        }
        int keyboard_room = session->typed.used + 1 < sizeof session->typed.bytes;
        struct pollfd entries[2] = {
            {.fd = session->keyboard.waitable,
             .events = (short)(!session->input_ended && keyboard_room ? POLLIN : 0)},
            {.fd = session->server,
             .events = (short)(POLLIN | (session->typed.used ? POLLOUT : 0))},
        };
        /* Leaving the keyboard out once input ended: an ended stdin is always "readable". */
        int first = entries[0].events ? 0 : 1;
        if (poll(entries + first, (unsigned long)(2 - first), -1) < 0) {
            if (lab_error_is_interrupt(lab_last_error())) {
                continue;
            }
            lab_die("poll", NULL, lab_last_error());
        }
        if (entries[0].revents != 0 && first == 0) {
            read_keyboard(session);
        }
        if (session->typed.used > 0 && lab_output_flush(&session->typed, session->server) != 0) {
            lab_warn("send", NULL, lab_last_error()); /* e.g. EPIPE: the server is gone */
            return 1;
        }
        if (entries[1].revents != 0) {
            int still_open = print_room_lines(session);
            if (still_open <= 0) {
                int expected = session->told_server || session->said_bye; /* we left */
                if (still_open == 0 && !expected) {
                    printf("server closed the connection\n");
                }
                return still_open == 0 && expected ? 0 : 1;
            }
        }
    }
}

int main(int argc, char **argv)
{
    lab_startup("client");
    if (lab_wants_help(argc, argv)) {
        print_usage();
        return 0;
    }
    const char *host;
    const char *port;
    lab_client_arguments(argc, argv, 0, &host, &port);
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* a send() to a closed connection fails with EPIPE instead */
#endif
    static struct session session; /* static: zeroed, and it lasts as long as the process */
    session.server = lab_connect(host, port);
    lab_announce_connected(session.server);
    if (lab_set_nonblocking(session.server) != 0) {
        lab_die("set non-blocking", NULL, lab_last_error());
    }
    if (lab_keyboard_open(&session.keyboard) != 0) {
        return 1;
    }
    session.last_typed = '\n';
    lab_line_reader_init(&session.lines);
    return converse(&session);
}
