/*
 * Lesson 13 - socket buffers and flow control: a server that reads never, slowly, or late.
 *
 * What a client sends waits in this server's receive buffer until the server reads it. Not
 * read, it fills; TCP tells the client "window 0" and the client's send buffer fills behind
 * it: flow control holds a sender to its reader's pace. The listener asks for the sizes
 * (setsockopt SO_RCVBUF, SO_SNDBUF) before the port is announced: a connection copies them
 * as its handshake arrives and offers its first window from them. A thread per client
 * (lesson 06) does what MODE says. never: never reads. slow: reads SLOW_CHUNK bytes, then
 * pauses SLOW_TICK_MS (about 200 KB/s). send-first: sends BYTES, then reads; with a client
 * that sends first too, both stop, for neither reads (said after STALL_MS). poll: sends
 * BYTES while it reads, waiting in poll() for both: the cure.
 *
 * Run:    build/lessons/13-socket-buffers/server [PORT [BIND-ADDRESS [MODE [RCVBUF [SNDBUF
 *         [BYTES]]]]]]   (default 5050 127.0.0.1 never default default 10485760)
 * Before: 12-chat-room.    Next: 14-closing.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#define SHUT_WR SD_SEND /* shutdown()'s "no more sending", as Winsock spells it */
#endif

#define STALL_MS 1000   /* nothing moved for this long: say so (send-first, poll) */
#define SLOW_TICK_MS 20 /* slow: a pause after each read... */
#define SLOW_CHUNK 4096 /* ...of at most this many bytes */
#define CHUNK 65536     /* bytes offered to one send() or recv() */

enum mode { NEVER, SLOW, SEND_FIRST, POLL };
static const char *const mode_names[] = {"never", "slow", "send-first", "poll"};

/* One client, handed to its own thread, which frees it. */
struct client {
    lab_socket socket;
    char name[LAB_ADDRESS_TEXT];
    enum mode mode;
    long bytes, sent, received; /* bytes: to send (BYTES in send-first and poll, else 0) */
};

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS [MODE [RCVBUF [SNDBUF [BYTES]]]]]]\n"
           "Listens on BIND-ADDRESS:PORT (default %s:%s; 0: any free port). RCVBUF, SNDBUF:\n"
           "bytes of buffer to ask for, or 'default'. MODE never (default): never reads; slow:\n"
           "reads %d bytes every %d ms; send-first: sends BYTES (default 10485760), then\n"
           "reads; poll: sends BYTES while it reads.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT, SLOW_CHUNK, SLOW_TICK_MS);
}

/* What the kernel says the buffer is now - not what anyone asked for. */
static int buffer_size(lab_socket s, int option)
{
    int size = 0;
    socklen_t length = sizeof size;
    if (getsockopt(s, SOL_SOCKET, option, (char *)&size, &length) != 0) {
        lab_die("getsockopt", NULL, lab_last_error());
    }
    return size;
}

/* Asks for text bytes ("default": none); reports the default and what getsockopt() says. */
static void ask_for(lab_socket s, int option, const char *text, char *report, size_t size)
{
    const char *name = option == SO_RCVBUF ? "SO_RCVBUF" : "SO_SNDBUF";
    int before = buffer_size(s, option);
    long asked = -1;
    if (strcmp(text, "default") != 0 && lab_parse_count(text, 999999999L, &asked) != 0) {
        lab_usage_error("a size is a number of bytes or 'default', not", text);
    }
    int value = (int)asked;
    if (asked >= 0 && setsockopt(s, SOL_SOCKET, option, (const char *)&value, sizeof value) != 0) {
        lab_die("setsockopt", name, lab_last_error());
    }
    int got = buffer_size(s, option); /* what the kernel granted: not always what was asked */
    int n = snprintf(report, size, "%s default %d", name, before);
    if (asked >= 0) {
        snprintf(report + n, size - (size_t)n, ", asked %ld, got %d", asked, got);
    }
}

/* Serves a client as its mode says: sends client->bytes, and reads to its end of file -
 * meanwhile in poll mode, afterwards in send-first and slow, never in never. A stall is
 * said once (not in slow or never); then it waits on, until the client leaves. */
static void serve(struct client *client)
{
    char bytes[CHUNK] = {0}; /* what is sent does not matter here, only how much */
    int client_done = 0, stopped = client->mode == SLOW || client->mode == NEVER;
    long long moved_at = lab_now_ms();
    while (client->sent < client->bytes || !client_done) {
        struct pollfd entry = {.fd = client->socket,
                               .events = client->sent < client->bytes ? POLLOUT : 0};
        if (!client_done && client->mode != NEVER &&
            (client->sent == client->bytes || client->mode == POLL)) {
            entry.events |= POLLIN;
        }
        long long left = moved_at + STALL_MS - lab_now_ms();
        int ready = poll(&entry, 1, stopped ? -1 : left > 0 ? (int)left : 0);
        if (ready > 0 && entry.events == 0) {
            return; /* never: only POLLERR or POLLHUP, which come unasked, wake it */
        }
        if (ready == 0 && !stopped++) {
            printf("client %s stopped: nothing moved for %d ms; sent %ld bytes%s, received %ld "
                   "bytes\n",
                   client->name, STALL_MS, client->sent,
                   client->sent < client->bytes ? " before send would block" : "",
                   client->received);
        }
        lab_io_size n = 0;
        const char *call = ready < 0 ? "poll" : "recv"; /* revents is 0 after a timeout */
        if ((entry.events & POLLIN) && (entry.revents & (POLLIN | POLLERR | POLLHUP))) {
            n = recv(client->socket, bytes, client->mode == SLOW ? SLOW_CHUNK : CHUNK, 0);
            client_done = n == 0;
            client->received += n > 0 ? (long)n : 0;
        } else if ((entry.events & POLLOUT) && (entry.revents & (POLLOUT | POLLERR | POLLHUP))) {
            long size = client->bytes - client->sent;
            n = send(client->socket, bytes, (int)(size < CHUNK ? size : CHUNK), 0);
            call = "send";
            client->sent += n > 0 ? (long)n : 0;
            if (n > 0 && client->sent == client->bytes) {
                shutdown(client->socket, SHUT_WR); /* all sent: our end of file */
            }
        }
        int error_code = lab_last_error();
        if ((ready < 0 || n < 0) && !lab_error_is_interrupt(error_code) &&
            !lab_error_is_would_block(error_code)) {
            lab_warn(call, client->name, error_code);
            return;
        }
        moved_at = n > 0 || client_done ? lab_now_ms() : moved_at;
        if (n > 0 && client->mode == SLOW) {
            lab_sleep_ms(SLOW_TICK_MS); /* the slow reader: its buffer fills meanwhile */
        }
    }
}

/* A client's thread: prints the sizes its socket got from the listener, serves it, ends. */
static void serve_client(void *argument)
{
    struct client *client = argument;
    printf("client %s connected: SO_RCVBUF %d, SO_SNDBUF %d\n", client->name,
           buffer_size(client->socket, SO_RCVBUF), buffer_size(client->socket, SO_SNDBUF));
    if (lab_set_nonblocking(client->socket) == 0) { /* poll() waits, not send() or recv() */
        serve(client);
    }
    printf("client %s disconnected: sent %ld bytes, received %ld bytes\n", client->name,
           client->sent, client->received);
    lab_close(client->socket);
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
    lab_server_arguments(argc, argv, 4, &port, &host);
    enum mode mode = NEVER;
    while (argc > 3 && strcmp(argv[3], mode_names[mode]) != 0) {
        if (++mode > POLL) {
            lab_usage_error("MODE is never, slow, send-first or poll, not", argv[3]);
        }
    }
    long bytes = 10485760L; /* 10 MB */
    if (argc > 6 && lab_parse_count(argv[6], 999999999L, &bytes) != 0) {
        lab_usage_error("BYTES is a number from 0 to 999999999, not", argv[6]);
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* a send() to a client that left fails instead of killing us */
#endif
    lab_socket listener = lab_listen(host, port);
    /* Before anyone can connect (the port is not announced yet): connections copy these. */
    char reports[2][100];
    ask_for(listener, SO_RCVBUF, argc > 4 ? argv[4] : "default", reports[0], sizeof reports[0]);
    ask_for(listener, SO_SNDBUF, argc > 5 ? argv[5] : "default", reports[1], sizeof reports[1]);
    lab_announce_listening(listener);
    printf("%s\n%s\n", reports[0], reports[1]);
    for (;;) {
        struct client *client = calloc(1, sizeof *client);
        if (client == NULL || !lab_socket_ok(client->socket = lab_accept(listener, client->name,
                                                                         sizeof client->name))) {
            free(client); /* lab_accept warned, and paused if out of descriptors */
            continue;
        }
        client->mode = mode;
        client->bytes = mode == SEND_FIRST || mode == POLL ? bytes : 0;
        if (lab_thread_start(serve_client, client) != 0) {
            lab_warn("start a thread for", client->name, lab_last_error());
            lab_close(client->socket);
            free(client);
        }
    }
}
