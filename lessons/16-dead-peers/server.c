/*
 * Lesson 16 - dead peers: lesson 10's poll loop, in which no wait lasts for ever.
 *
 * A peer whose machine lost power sends neither FIN nor RST, and a frozen one still has its
 * kernel acknowledge every byte: a server that only waits for bytes waits for ever. Here:
 *   - a heartbeat: IDLE seconds without a byte from a client, and the server sends it the
 *     line "* ping"; if no byte comes within GRACE seconds more, the client is dropped;
 *   - TCP keepalive (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT): the kernel
 *     probes a connection on which nothing moves, and ends it when nobody answers;
 *   - TCP_USER_TIMEOUT (Linux): data left unacknowledged that long ends the connection.
 * Every client has the same IDLE and GRACE, so the timers are two lists kept in deadline
 * order for free: a byte from a client moves it to the tail of "idle" (O(1)); a ping moves it
 * to the tail of "pinged". A wake looks only at the two heads, and poll() sleeps until the
 * earlier of them (-1: no deadline at all). README.md says why not a heap or a wheel.
 *
 * Run:    build/lessons/16-dead-peers/server [PORT [BIND-ADDRESS [IDLE [GRACE [KEEPALIVE
 *         [USER-TIMEOUT-MS]]]]]]   (default 5050 127.0.0.1 30 10 60,10,5 110000)
 * Before: 15-bulk-transfer (diff against 10-poll).    Next: 17-io-uring.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <netinet/tcp.h> /* TCP_KEEPIDLE, TCP_USER_TIMEOUT, ... */
#endif
#if !defined(TCP_KEEPIDLE) && defined(TCP_KEEPALIVE)
#define TCP_KEEPIDLE TCP_KEEPALIVE /* macOS's name for the idle time */
#endif

#define NEVER (1LL << 62) /* the deadline of a client while the heartbeat is off */
#define MOST_SECONDS 86400L
#define PING "* ping\n"

struct settings {
    long idle_ms, grace_ms; /* the heartbeat; idle_ms 0: off */
    long keepalive[3];      /* idle and interval in seconds, probe count; [0] == 0: off */
    const char *keepalive_text;
    long user_timeout_ms; /* 0: off */
};

struct client {
    struct lab_echo_client echo; /* lesson 04's state: socket, partial line, answers */
    long long deadline;          /* lab_now_ms() at which its timer runs out */
    struct timer_list *list;     /* the list it is on: idle or pinged */
    struct client *earlier, *later;
};

struct timer_list {
    struct client *first, *last; /* first has the earliest deadline */
};

struct server {
    struct settings settings;
    struct timer_list idle, pinged;
    size_t count;
};

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS [IDLE [GRACE [KEEPALIVE [USER-TIMEOUT-MS]]]]]]\n"
           "Echo server (one thread, poll) that finds dead peers, on BIND-ADDRESS:PORT\n"
           "(default %s:%s). After IDLE seconds (default 30; 0: never) without a byte from a\n"
           "client it sends \"* ping\"; GRACE seconds (default 10) later, still nothing: dropped.\n"
           "KEEPALIVE is IDLE,INTERVAL,COUNT in seconds (default 60,10,5) or off.\n"
           "USER-TIMEOUT-MS (Linux): unacknowledged data ends a connection after that long\n"
           "(default: keepalive's IDLE + INTERVAL x COUNT up to a day, else 30000; 0: off).\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

/* Reads "IDLE,INTERVAL,COUNT" (Linux's own limits) or "off"; returns 0, or -1 if invalid. */
static int parse_keepalive(const char *text, long keepalive[3])
{
    char extra;
    keepalive[0] = 0;
    return strcmp(text, "off") == 0 ||
                   (sscanf(text, "%ld,%ld,%ld%c", &keepalive[0], &keepalive[1], &keepalive[2],
                           &extra) == 3 &&
                    keepalive[0] >= 1 && keepalive[0] <= 32767 && keepalive[1] >= 1 &&
                    keepalive[1] <= 32767 && keepalive[2] >= 1 && keepalive[2] <= 127)
               ? 0
               : -1;
}

static void read_settings(int argc, char **argv, struct settings *settings)
{
    long idle = 30, grace = 10;
    if (argc > 3 && lab_parse_count(argv[3], MOST_SECONDS, &idle) != 0) {
        lab_usage_error("invalid IDLE (expected 0-86400 seconds)", argv[3]);
    }
    if (argc > 4 && (lab_parse_count(argv[4], MOST_SECONDS, &grace) != 0 || grace == 0)) {
        lab_usage_error("invalid GRACE (expected 1-86400 seconds)", argv[4]);
    }
    settings->keepalive_text = argc > 5 ? argv[5] : "60,10,5";
    if (parse_keepalive(settings->keepalive_text, settings->keepalive) != 0) {
        lab_usage_error("invalid KEEPALIVE (expected IDLE,INTERVAL,COUNT or off)", argv[5]);
    }
    long *keepalive = settings->keepalive; /* a user timeout also ends keepalive: README.md */
    long seconds = keepalive[0] ? keepalive[0] + keepalive[1] * keepalive[2] : 30;
    if (seconds > MOST_SECONDS) { /* capped before * 1000: Windows' long has 32 bits */
        seconds = MOST_SECONDS;   /* a day of ms fits TCP_USER_TIMEOUT's int */
    }
    settings->user_timeout_ms = seconds * 1000;
    if (argc > 6 && lab_parse_count(argv[6], MOST_SECONDS * 1000, &settings->user_timeout_ms)) {
        lab_usage_error("invalid USER-TIMEOUT-MS (expected 0-86400000)", argv[6]);
    }
    settings->idle_ms = idle * 1000;
    settings->grace_ms = grace * 1000;
}

static void set_option(lab_socket s, int level, int option, long value, const char *name)
{
    int number = (int)value;
    if (setsockopt(s, level, option, (const char *)&number, sizeof number) != 0) {
        lab_warn("setsockopt", name, lab_last_error()); /* the client is served all the same */
    }
}

/* Keepalive and the user timeout for one accepted socket (here, not on the listener, so that
 * nothing depends on what a system copies from a listener into the sockets it accepts). */
static void set_dead_peer_options(lab_socket s, const struct settings *settings)
{
    const long *keepalive = settings->keepalive;
    if (keepalive[0] > 0) {
#ifdef TCP_KEEPIDLE
        set_option(s, IPPROTO_TCP, TCP_KEEPIDLE, keepalive[0], "TCP_KEEPIDLE");
#endif
#ifdef TCP_KEEPINTVL
        set_option(s, IPPROTO_TCP, TCP_KEEPINTVL, keepalive[1], "TCP_KEEPINTVL");
#endif
#ifdef TCP_KEEPCNT
        set_option(s, IPPROTO_TCP, TCP_KEEPCNT, keepalive[2], "TCP_KEEPCNT");
#endif
        set_option(s, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
    }
#ifdef TCP_USER_TIMEOUT
    set_option(s, IPPROTO_TCP, TCP_USER_TIMEOUT, settings->user_timeout_ms, "TCP_USER_TIMEOUT");
#endif
}

/* Says once what is set, and warns about what this system's headers cannot set. */
static void announce_settings(const struct settings *settings)
{
    if (settings->idle_ms > 0) {
        printf("heartbeat after %ld s of silence, drop %ld s later; ", settings->idle_ms / 1000,
               settings->grace_ms / 1000);
    }
    printf("keepalive %s; user timeout %ld ms\n", settings->keepalive_text,
           settings->user_timeout_ms);
#if !defined(TCP_KEEPIDLE) || !defined(TCP_KEEPINTVL) || !defined(TCP_KEEPCNT)
    fprintf(stderr, "server: keepalive's times cannot be set here: the system's are used\n");
#endif
#ifndef TCP_USER_TIMEOUT
    fprintf(stderr, "server: no TCP_USER_TIMEOUT here (Linux only): not set\n");
#endif
}

/* Takes a client off its timer list, if it is on one. */
static void unlink_timer(struct client *client)
{
    struct timer_list *list = client->list;
    if (list == NULL) {
        return;
    }
    *(client->earlier ? &client->earlier->later : &list->first) = client->later;
    *(client->later ? &client->later->earlier : &list->last) = client->earlier;
    client->list = NULL;
}

/* Puts a client last on a list. Every deadline on a list is now + the same delay, and now
 * never goes back, so the tail is its place: the list stays in deadline order. */
static void append_timer(struct timer_list *list, struct client *client, long long deadline)
{
    unlink_timer(client);
    client->deadline = deadline;
    client->list = list;
    client->later = NULL;
    client->earlier = list->last;
    *(list->last ? &list->last->later : &list->first) = client;
    list->last = client;
}

/* A byte came from the client: its silence starts again now. */
static void touch(struct server *server, struct client *client, long long now)
{
    long idle_ms = server->settings.idle_ms;
    append_timer(&server->idle, client, idle_ms ? now + idle_ms : NEVER);
}

static void remove_client(struct server *server, struct client *client, const char *why)
{
    unlink_timer(client);
    printf("client %s %s\n", client->echo.peer, why);
    lab_echo_client_close(&client->echo);
    free(client);
    server->count--;
}

/* Pings the clients silent for IDLE, drops those pinged GRACE ago: only heads are looked at. */
static void run_timers(struct server *server, long long now)
{
    struct client *client;
    while ((client = server->idle.first) != NULL && client->deadline <= now) {
        struct lab_echo_client *echo = &client->echo;
        printf("client %s silent for %ld s: %s", echo->peer, server->settings.idle_ms / 1000, PING);
        if (echo->output == NULL && (echo->output = malloc(sizeof *echo->output)) != NULL) {
            echo->output->used = 0;
        }
        if (echo->output != NULL) { /* a full output (or no memory) loses the ping: GRACE */
            lab_output_append(echo->output, PING, strlen(PING)); /* still bounds the wait */
        }
        append_timer(&server->pinged, client, now + server->settings.grace_ms);
    }
    while ((client = server->pinged.first) != NULL && client->deadline <= now) {
        remove_client(server, client, "dropped: no answer to the heartbeat");
    }
}

/* How long poll() may sleep: until the earlier head's deadline, or -1 (for ever) if none. */
static int time_to_next_deadline(const struct server *server, long long now)
{
    long long idle = server->idle.first ? server->idle.first->deadline : NEVER;
    long long pinged = server->pinged.first ? server->pinged.first->deadline : NEVER;
    long long next = idle < pinged ? idle : pinged;
    return next == NEVER ? -1 : next <= now ? 0 : (int)(next - now);
}

/* Lesson 10's accept_clients(), with the options above and a timer for each newcomer. */
static int accept_clients(lab_socket listener, struct server *server, long long now)
{
    char peer[LAB_ADDRESS_TEXT];
    lab_socket accepted;
    int out_of_descriptors;
    while (lab_socket_ok(accepted =
                             lab_try_accept(listener, peer, sizeof peer, &out_of_descriptors))) {
        struct client *client = NULL;
        if (lab_set_nonblocking(accepted) != 0) {
            lab_warn("set non-blocking", peer, lab_last_error());
        } else if ((client = malloc(sizeof *client)) == NULL) {
            fprintf(stderr, "server: no memory for client %s: closing it\n", peer);
        }
        if (client == NULL) {
            lab_close(accepted);
            continue;
        }
        lab_echo_client_init(&client->echo, accepted, peer);
        set_dead_peer_options(accepted, &server->settings);
        client->list = NULL;
        touch(server, client, now);
        server->count++;
        printf("client connected from %s\n", peer);
    }
    return out_of_descriptors;
}

/* Lesson 10's fill_entries(), walking both lists; owners[i] is the client of entries[i]
 * (a client served in the walk moves in its list, so the walk cannot follow the lists). */
static void fill_entries(struct pollfd **entries, struct client ***owners, size_t *capacity,
                         lab_socket listener, const struct server *server)
{
    if (server->count + 1 > *capacity) {
        *capacity = 2 * (server->count + 1);
        *entries = realloc(*entries, *capacity * sizeof **entries);
        *owners = realloc(*owners, *capacity * sizeof **owners);
        if (*entries == NULL || *owners == NULL) {
            fprintf(stderr, "server: no memory for %zu poll entries\n", *capacity);
            exit(1);
        }
    }
    (*entries)[0] = (struct pollfd){.fd = listener, .events = POLLIN};
    size_t used = 1;
    struct client *heads[2] = {server->idle.first, server->pinged.first};
    for (int list = 0; list < 2; list++) {
        for (struct client *client = heads[list]; client; client = client->later) {
            enum lab_want want = lab_echo_wants(&client->echo);
            (*entries)[used] = (struct pollfd){.fd = client->echo.socket, .events = 0};
            (*entries)[used].events |= (short)((want & LAB_WANT_READ) ? POLLIN : 0);
            (*entries)[used].events |= (short)((want & LAB_WANT_WRITE) ? POLLOUT : 0);
            (*owners)[used++] = client;
        }
    }
}

static void serve_forever(lab_socket listener, struct server *server)
{
    struct pollfd *entries = NULL;
    struct client **owners = NULL;
    size_t capacity = 0;
    long long accept_again_at = 0; /* out of descriptors: leave the listener out until then */
    for (;;) {
        long long now = lab_now_ms();
        run_timers(server, now);
        int timeout = time_to_next_deadline(server, now); /* never a fixed tick */
        long long pause_left = accept_again_at - now;
        if (pause_left > 0 && server->count == 0) {
            lab_sleep_ms((int)pause_left); /* nobody to serve meanwhile (and Windows fails */
            continue;                      /* a wait for no socket at all) */
        }
        if (pause_left > 0 && (timeout < 0 || pause_left < timeout)) {
            timeout = (int)pause_left;
        }
        fill_entries(&entries, &owners, &capacity, listener, server);
        size_t watched = server->count;
        int ready = pause_left > 0 ? poll(entries + 1, watched, timeout) /* no listener */
                                   : poll(entries, watched + 1, timeout);
        if (ready < 0 && !lab_error_is_interrupt(lab_last_error())) {
            lab_die("poll", NULL, lab_last_error());
        }
        now = lab_now_ms();
        for (size_t i = 1; ready > 0 && i <= watched; i++) {
            struct client *client = owners[i];
            if (entries[i].revents & POLLIN) {
                touch(server, client, now); /* it sent bytes (or its end): not silent */
            }
            if (entries[i].revents != 0 && lab_echo_round(&client->echo) == LAB_ROUND_CLIENT_GONE) {
                remove_client(server, client, "disconnected");
            }
        }
        if (ready > 0 && pause_left <= 0 && entries[0].revents != 0 &&
            accept_clients(listener, server, now)) {
            accept_again_at = now + LAB_ACCEPT_PAUSE_MS; /* not a sleep: serve on */
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
    const char *port;
    const char *host;
    lab_server_arguments(argc, argv, 4, &port, &host);
    static struct server server; /* static: zeroed, and it lasts as long as the process */
    read_settings(argc, argv, &server.settings);
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* lesson 03's policy: a send() to a departed client fails */
#endif
    lab_socket listener = lab_listen(host, port);
    if (lab_set_nonblocking(listener) != 0) {
        lab_die("set non-blocking", NULL, lab_last_error());
    }
    lab_announce_listening(listener);
    announce_settings(&server.settings);
    serve_forever(listener, &server);
}
