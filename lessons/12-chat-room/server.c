/*
 * Lesson 12 - a chat room: each client's line goes to every other client, and a client that
 * does not read cannot stall the room.
 *
 * The loop is lesson 10's, from common/ (lab_poll_loop); what is new is what a line does.
 * It is stored once (struct message counts its receivers) and each receiver queues a
 * 16-byte node pointing at it. A client whose queue would pass QUEUE-LIMIT bytes is dropped
 * and the others are told: nobody waits for it, and the room's memory stays bounded.
 *
 * Run:    build/lessons/12-chat-room/server [PORT [BIND-ADDRESS [QUEUE-LIMIT]]]
 *         (default 5050 127.0.0.1 65536); clients: build/lessons/12-chat-room/client
 * Before: 11-epoll (diff against 10-poll).    Next: 13-socket-buffers.
 */
#include "lab.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_LIMIT 16          /* a name is 1-16 of A-Z a-z 0-9 _ - */
#define SEND_CHUNK (16 * 1024) /* queued lines copied into one send() at a time */
#define NAME_CHARACTERS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

struct message { /* one line as sent, shared by every client it is queued for */
    size_t receivers, length;
    char text[];
};
struct queued { /* one client's place in line for a message: 16 bytes */
    struct message *message;
    struct queued *next;
};
struct client {
    struct lab_connection connection; /* first: the loop's view of this client */
    char name[NAME_LIMIT + 1];
    struct lab_line_reader input;
    struct queued *first, *last; /* the lines this client has not been sent yet */
    size_t queued_bytes;         /* their bytes not sent yet: at most queue_limit */
    size_t first_sent;           /* the bytes of first->message already sent */
    int leaving;                 /* /quit or end of file: send what waits, then close */
    int gone;                    /* dropped: the loop removes it before its next wait */
};
static struct lab_connection_list room; /* every client, newest first */
static size_t queue_limit = 65536;      /* QUEUE-LIMIT from the command line */
static unsigned long guests;            /* newcomers so far: the N of guestN */

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS [QUEUE-LIMIT]]]\n"
           "Chat room on BIND-ADDRESS:PORT (default %s:%s; port 0 picks a free port): a line\n"
           "goes to every other client as 'NAME: line'. /nick NAME, /who, /quit. A client\n"
           "whose unsent lines would pass QUEUE-LIMIT bytes (default 65536) is dropped.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

/* say() takes a printf format: gcc and clang then check each call's arguments against it. */
#ifdef __GNUC__
#define PRINTF_FORMAT(string_index, first_checked)                                                 \
    __attribute__((format(printf, string_index, first_checked)))
#else
#define PRINTF_FORMAT(string_index, first_checked)
#endif
static void say(struct client *to, const struct client *except, const char *format, ...)
    PRINTF_FORMAT(3, 4);

/* Marks a client to be removed, and tells the others why. */
static void drop(struct client *client, const char *why)
{
    if (!client->gone) {
        client->gone = 1;
        printf("%s dropped: %s\n", client->name, why);
        say(NULL, client, "* %s was disconnected: %s", client->name, why);
    }
}

/* Queues message for client - unless that would pass the limit: the room does not wait
 * for a client that reads too slowly, it drops it. */
static void enqueue(struct client *client, struct message *message)
{
    if (client->gone || client->leaving) {
        return;
    }
    struct queued *node = malloc(sizeof *node);
    if (node == NULL || client->queued_bytes + message->length > queue_limit) {
        free(node);
        drop(client, node == NULL ? "no memory" : "too slow");
        return;
    }
    *node = (struct queued){message, NULL};
    message->receivers++;
    client->queued_bytes += message->length;
    *(client->last != NULL ? &client->last->next : &client->first) = node;
    client->last = node;
}

/* Queues text[length] and a "\n", copied once, for `to` alone or (to == NULL) for every
 * client but except. */
static void queue_line(struct client *to, const struct client *except, const char *text,
                       size_t length)
{
    struct message *message = malloc(sizeof *message + length + 1);
    if (message == NULL) {
        return; /* this line is lost; the room goes on */
    }
    *message = (struct message){1, length + 1}; /* 1: ours, until the receivers have it */
    memcpy(message->text, text, length);
    message->text[length] = '\n';
    if (to != NULL) {
        enqueue(to, message); /* maybe a newcomer, not in the room's list yet */
    }
    for (struct lab_connection *each = to ? NULL : room.first; each != NULL; each = each->next) {
        if ((const struct client *)each != except) {
            enqueue((struct client *)each, message);
        }
    }
    if (--message->receivers == 0) {
        free(message);
    }
}

/* queue_line() with a printf format, for the room's own lines: never for a client's bytes,
 * which may hold a '\0' where %s would stop. */
static void say(struct client *to, const struct client *except, const char *format, ...)
{
    char line[LAB_LINE_MAX + 1];
    va_list arguments;
    va_start(arguments, format);
    int length = vsnprintf(line, sizeof line, format, arguments);
    va_end(arguments);
    queue_line(to, except, line, length < 0 ? 0 : strlen(line));
}

/* Why name cannot be client's, or NULL if it can. */
static const char *name_problem(const struct client *client, const char *name, size_t length)
{
    if (length == 0 || length > NAME_LIMIT || strspn(name, NAME_CHARACTERS) != length) {
        return "error: a name is 1-16 of A-Z a-z 0-9 _ -";
    }
    for (struct lab_connection *each = room.first; each != NULL; each = each->next) {
        const struct client *other = (const struct client *)each;
        if (other != client && !other->gone && strcmp(other->name, name) == 0) {
            return "error: that name is taken";
        }
    }
    return NULL;
}

/* Lists the names in the room on one line, as many as fit. */
static void tell_who(struct client *client)
{
    char names[LAB_LINE_MAX + 1];
    size_t used = (size_t)snprintf(names, sizeof names, "* %zu here:", room.count);
    for (struct lab_connection *each = room.first; each != NULL; each = each->next) {
        if (used + 1 + NAME_LIMIT < sizeof names) {
            used += (size_t)snprintf(names + used, sizeof names - used, " %s",
                                     ((struct client *)each)->name);
        }
    }
    queue_line(client, NULL, names, used);
}

/* Carries out one line of a client's: a command, or a line for everybody else. */
static void handle_line(struct client *client, const char *line, size_t length)
{
    if (line[0] != '/') {
        char said[NAME_LIMIT + 2 + LAB_LINE_MAX];
        size_t prefix = (size_t)snprintf(said, sizeof said, "%s: ", client->name);
        memcpy(said + prefix, line, length); /* bytes, not a string: memcpy, not %s */
        queue_line(NULL, client, said, prefix + length);
    } else if (strncmp(line, "/nick ", 6) == 0) {
        const char *problem = name_problem(client, line + 6, length - 6);
        if (problem != NULL) {
            say(client, NULL, "%s", problem);
            return;
        }
        printf("%s is now %s\n", client->name, line + 6);
        say(NULL, NULL, "* %s is now %s", client->name, line + 6);
        memcpy(client->name, line + 6, length - 6 + 1);
    } else if (strcmp(line, "/who") == 0) {
        tell_who(client);
    } else if (strcmp(line, "/quit") == 0) {
        say(client, NULL, "* bye");
        client->leaving = 1;
    } else {
        say(client, NULL, "error: unknown command (/nick NAME, /who, /quit)");
    }
}

/* Hook: a newcomer is named guestN and told so; the others hear of it. */
static struct lab_connection *accepted(const char *peer)
{
    struct client *client = calloc(1, sizeof *client); /* no lines queued, no flags set */
    if (client == NULL) {
        return NULL;
    }
    lab_line_reader_init(&client->input);
    do { /* someone may have taken "guestN" with /nick already */
        snprintf(client->name, sizeof client->name, "guest%lu", ++guests);
    } while (name_problem(client, client->name, strlen(client->name)) != NULL);
    printf("%s joined from %s\n", client->name, peer);
    say(NULL, NULL, "* %s joined", client->name); /* the room so far: not the newcomer */
    say(client, NULL, "* you are %s (/nick NAME, /who, /quit)", client->name);
    return &client->connection;
}

/* Hook: read while it stays, write while lines wait for it, nothing once it is gone. */
static int wants(struct lab_connection *connection)
{
    struct client *client = (struct client *)connection;
    if (client->gone || (client->leaving && client->first == NULL)) {
        return 0; /* the loop removes it */
    }
    return (client->leaving ? 0 : LAB_WANT_READ) | (client->first ? LAB_WANT_WRITE : 0);
}

/* Receives once and carries out each whole line; end of file or an error: leaving. */
static void receive(struct client *client)
{
    lab_io_size received = lab_line_fill(&client->input, client->connection.socket);
    if (received <= 0) {
        client->leaving = received == 0 || !lab_error_is_would_block(lab_last_error());
        return; /* half a line without its "\n" is dropped, never sent to the room */
    }
    char line[LAB_LINE_MAX + 1];
    size_t length;
    enum lab_line_status status;
    while (!client->leaving && !client->gone && /* after /quit, nothing more is said */
           (status = lab_line_take(&client->input, line, &length)) != LAB_LINE_NEED_MORE) {
        if (status == LAB_LINE_TOO_LONG) {
            queue_line(client, NULL, LAB_LINE_TOO_LONG_REPLY, strlen(LAB_LINE_TOO_LONG_REPLY) - 1);
        } else if (length > 0) {
            handle_line(client, line, length);
        }
    }
}

/* Takes the first queued line off, freeing its message after its last receiver. */
static void unqueue_first(struct client *client)
{
    struct queued *done = client->first;
    client->first = done->next;
    client->last = client->first != NULL ? client->last : NULL;
    client->queued_bytes -= done->message->length - client->first_sent;
    client->first_sent = 0;
    if (--done->message->receivers == 0) {
        free(done->message);
    }
    free(done);
}

/* Sends the queued lines, several per send(): copied into one chunk, since a system call
 * per line would cost more than the copy. Stops when the socket takes no more (would
 * block) or nothing is left; unqueues each line sent whole. */
static void send_queued(struct client *client)
{
    while (client->first != NULL) {
        char chunk[SEND_CHUNK];
        size_t used = 0, skip = client->first_sent;
        for (struct queued *node = client->first; node != NULL && used < sizeof chunk;
             node = node->next, skip = 0) {
            size_t part = node->message->length - skip;
            part = part < sizeof chunk - used ? part : sizeof chunk - used;
            memcpy(chunk + used, node->message->text + skip, part);
            used += part;
        }
        lab_io_size sent = send(client->connection.socket, chunk, (int)used, 0);
        if (sent < 0) {
            if (!lab_error_is_would_block(lab_last_error())) {
                drop(client, "send failed"); /* e.g. reset; SIGPIPE is ignored */
            }
            return;
        }
        for (size_t left = (size_t)sent; left > 0;) {
            size_t rest = client->first->message->length - client->first_sent;
            size_t taken = left < rest ? left : rest;
            client->first_sent += taken;
            client->queued_bytes -= taken;
            left -= taken;
            if (taken == rest) {
                unqueue_first(client);
            }
        }
        if ((size_t)sent < used) {
            return; /* the socket is full: POLLOUT will say when there is room */
        }
    }
}

/* Hook: the socket is ready; an error or a hang-up shows up in recv() or send(). */
static void ready(struct lab_connection *connection, short revents)
{
    struct client *client = (struct client *)connection;
    if ((revents & (POLLIN | POLLERR | POLLHUP)) && !client->leaving && !client->gone) {
        receive(client);
    }
    if (!client->gone) {
        send_queued(client); /* also what receive() queued for it: no wait for POLLOUT */
    }
}

/* Hook: the loop closed its socket. The room hears it left; its queue lets go. */
static void removed(struct lab_connection *connection)
{
    struct client *client = (struct client *)connection;
    if (!client->gone) {
        printf("%s left\n", client->name);
        say(NULL, client, "* %s left", client->name);
    }
    while (client->first != NULL) {
        unqueue_first(client);
    }
    free(client);
}

int main(int argc, char **argv)
{
    lab_startup("server");
    if (lab_wants_help(argc, argv)) {
        print_usage();
        return 0;
    }
    const char *port;
    const char *host;
    lab_server_arguments(argc, argv, 1, &port, &host);
    long limit = (long)queue_limit;
    if (argc > 3 && (lab_parse_count(argv[3], 1L << 30, &limit) != 0 || limit < 1)) {
        lab_usage_error("invalid queue limit (expected 1-1073741824 bytes)", argv[3]);
    }
    queue_limit = (size_t)limit;
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* lesson 03's policy: a send() to a departed client fails */
#endif
    lab_socket listener = lab_listen(host, port);
    if (lab_set_nonblocking(listener) != 0) {
        lab_die("set non-blocking", NULL, lab_last_error());
    }
    lab_announce_listening(listener);
    static const struct lab_loop_hooks hooks = {accepted, wants, ready, removed};
    lab_poll_loop(listener, &room, &hooks);
}
