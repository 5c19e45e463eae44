/*
 * fanout.c - the fan-out load generator: how many lines a chat room (lesson 12) or a Redis
 * pub/sub channel delivers per second to R listeners, and how long each delivery takes.
 *
 * R receivers and S senders connect. With --target room each is a client of lesson 12's
 * room; with --target redis each receiver sends SUBSCRIBE CHANNEL and each sender PUBLISHes
 * on that channel (RESP). Once every receiver is in (the room's "* you are guestN" line,
 * Redis's subscribe reply), the senders send messages of SIZE bytes, "m S SEQ T ....": S the
 * sender, SEQ its count, T the time it was sent (CLOCK_MONOTONIC ns). Each receiver parses
 * what it gets (the room's "NAME: text\n" lines, skipping the room's own "* " lines; Redis's
 * ["message", CHANNEL, text] arrays), checks that every sender's messages arrive in order with
 * none missing, and records the delivery's latency: the time it was read minus T.
 *
 * The pace is a closed loop with a window: each sender keeps at most IN-FLIGHT messages on
 * their way, a message being on its way until every receiver has it, and sends the next one
 * the moment one is complete. So a faster server gets more messages, and a slow one never has
 * more than IN-FLIGHT messages queued for a receiver: what is timed is the fan-out itself,
 * not a queue that grows without end in an overloaded server (which is all an open loop
 * above the server's rate would measure), and nobody nears the room's QUEUE-LIMIT. A run
 * has three parts, as loadgen's: connect (every connection opened and in the room or
 * subscribed, at most CONNECTS_IN_FLIGHT at a time), warm-up (messages flow, uncounted)
 * and the window (only deliveries read inside it are counted and timed). Then it prints one
 * JSON line on stdout (for tests/bench/run.py) and a line for people on stderr.
 *
 * In the room, senders are clients too: they read and count the other senders' lines
 * ("sender_deliveries", not timed), where Redis's publishers get none. A connection the
 * server closes (the room drops a client whose queue passes its QUEUE-LIMIT) is "dropped";
 * one that gets something unexpected is a "wrong reply" and is closed; the others go on.
 *
 * Linux only (epoll), one thread, loopback only (127.0.0.0/8 or ::1).
 * Run:    build-bench/tests/bench/fanout [OPTIONS] [HOST [PORT]]   (127.0.0.1 5050)
 *         e.g. fanout --target room --receivers 100 --duration 5 127.0.0.1 5050
 *              fanout --target redis --receivers 100 --duration 5 127.0.0.1 6379
 * See:    tests/bench/run.py (scenario fanout), which races lesson 12 against redis-server.
 */
#include "bench_common.h"

#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define RECEIVERS_LIMIT 2000 /* the room tells everyone of each newcomer: R * R / 2 lines */
#define SENDERS_LIMIT 64
#define IN_FLIGHT_LIMIT 4096
#define MESSAGE_MIN 48   /* "m S SEQ T " at their longest, and a dot */
#define MESSAGE_MAX 1000 /* with "guestN: " in front, still within the room's LAB_LINE_MAX */
#define CHANNEL_LIMIT 64
#define SECONDS_LIMIT 120.0    /* the longest window; warm-up and connect take at most 60 */
#define CONNECTS_IN_FLIGHT 100 /* handshakes and joins at once: the listen queue never fills */
#define ERRORS_SHOWN 5         /* errors described on stderr; the rest are only counted */
#define MAX_EVENTS 256
#define INPUT_SIZE 8192 /* a connection's unparsed bytes: whole lines or RESP values fit */
#define OUTPUT_SIZE (MESSAGE_MAX + 128) /* one message and its PUBLISH framing */

/* ---- the command line --------------------------------------------------------------- */

struct settings {
    int redis; /* 1: --target redis, 0: --target room */
    long receivers, senders, in_flight, size;
    double warmup, duration, connect_timeout;
    const char *host, *port, *channel;
};

static void print_usage(void)
{
    printf("usage: fanout [OPTIONS] [HOST [PORT]]\n"
           "Fan-out load generator for lesson 12's chat room or Redis pub/sub (default %s %s;\n"
           "loopback only). Senders send timestamped messages; every receiver gets each one.\n"
           "  --target room|redis   a chat room of lesson 12, or redis-server (default room)\n"
           "  --receivers R         receiving clients, 1-%d (default 100)\n"
           "  --senders S           sending clients, 1-%d (default 1)\n"
           "  --in-flight W         messages each sender keeps on their way, 1-%d: the next\n"
           "                        goes when every receiver has one (default 8)\n"
           "  --size BYTES          bytes of each message's text, %d-%d (default 64)\n"
           "  --channel NAME        the Redis channel (default lab)\n"
           "  --warmup SECONDS      send without counting first, 0-60 (default 1)\n"
           "  --duration SECONDS    the measured window, 0.1-%.0f (default 5)\n"
           "  --connect-timeout S   how long connecting and joining may take, 0.1-60\n"
           "                        (default 10)\n"
           "Prints one JSON line on stdout and a summary on stderr. Exit status 0, or 1 when\n"
           "no receiver or no sender got in or no message reached every receiver, 2 for a\n"
           "usage error.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT, RECEIVERS_LIMIT, SENDERS_LIMIT, IN_FLIGHT_LIMIT,
           MESSAGE_MIN, MESSAGE_MAX, SECONDS_LIMIT);
}

static void read_settings(int argc, char **argv, struct settings *s)
{
    *s = (struct settings){
        0, 100, 1, 8, 64, 1.0, 5.0, 10.0, LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT, "lab"};
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        if (strncmp(name, "--", 2) != 0) { /* HOST, then PORT */
            if (positional == 2) {
                lab_usage_error("too many arguments", name);
            }
            if (positional++ == 0) {
                s->host = name;
            } else {
                s->port = name;
            }
            continue;
        }
        if (strcmp(name, "--help") == 0) {
            print_usage();
            exit(0);
        }
        if (i + 1 == argc) {
            lab_usage_error("this option needs a value", name);
        }
        const char *value = argv[++i];
        if (strcmp(name, "--target") == 0) {
            if (strcmp(value, "room") != 0 && strcmp(value, "redis") != 0) {
                lab_usage_error("--target: expected room or redis", value);
            }
            s->redis = strcmp(value, "redis") == 0;
        } else if (strcmp(name, "--receivers") == 0) {
            s->receivers = bench_parse_count(name, value, 1, RECEIVERS_LIMIT);
        } else if (strcmp(name, "--senders") == 0) {
            s->senders = bench_parse_count(name, value, 1, SENDERS_LIMIT);
        } else if (strcmp(name, "--in-flight") == 0) {
            s->in_flight = bench_parse_count(name, value, 1, IN_FLIGHT_LIMIT);
        } else if (strcmp(name, "--size") == 0) {
            s->size = bench_parse_count(name, value, MESSAGE_MIN, MESSAGE_MAX);
        } else if (strcmp(name, "--channel") == 0) {
            size_t length = strlen(value);
            if (length == 0 || length > CHANNEL_LIMIT || strcspn(value, " \r\n") != length) {
                lab_usage_error("--channel: 1-64 characters, no space or line end", value);
            }
            s->channel = value;
        } else if (strcmp(name, "--warmup") == 0) {
            s->warmup = bench_parse_seconds(name, value, 0.0, 60.0);
        } else if (strcmp(name, "--duration") == 0) {
            s->duration = bench_parse_seconds(name, value, 0.1, SECONDS_LIMIT);
        } else if (strcmp(name, "--connect-timeout") == 0) {
            s->connect_timeout = bench_parse_seconds(name, value, 0.1, 60.0);
        } else {
            lab_usage_error("unknown option", name);
        }
    }
}

/* ---- connections ---------------------------------------------------------------------- */

enum state {
    NOT_STARTED,
    CONNECTING, /* connect() in progress: waiting for writability, then SO_ERROR */
    JOINING,    /* connected: waiting for "* you are" (room) or the subscribe reply (Redis) */
    READY,      /* in the room or subscribed: receives (a receiver) or sends (a sender) */
    CLOSED
};

enum kind { OTHER, MESSAGE, SUBSCRIBE }; /* what a Redis array is, from its first element */

struct connection {
    int fd;
    int sender;  /* 1: a sender, 0: a receiver */
    long number; /* which receiver, or which sender, from 0 */
    enum state state;
    uint32_t events;          /* what epoll watches for now */
    char input[INPUT_SIZE];   /* bytes received and not parsed yet: the start of a line */
    size_t input_used;        /* how many */
    long bulk;                /* Redis: the length of the bulk string coming next, or -1 */
    long elements, element;   /* Redis: elements of the array still to come; the next one */
    enum kind kind;           /* Redis: the array being read */
    char output[OUTPUT_SIZE]; /* what is on its way out: one message, or SUBSCRIBE */
    size_t output_length, output_sent;
};

struct slot {        /* one message on its way */
    long waiting;    /* receivers that do not have it yet */
    int64_t sent_at; /* when it was sent (ns), as in its text */
};

struct sender {
    struct connection *connection;
    uint64_t sent, completed; /* messages sent; of those, how many every receiver has */
    struct slot *slots;       /* message SEQ is at slots[SEQ % in_flight] */
};

enum phase { PHASE_CONNECT, PHASE_WARMUP, PHASE_WINDOW, PHASE_DONE };

struct run {
    struct settings settings;
    struct sockaddr_storage address;
    socklen_t address_length;
    char where[LAB_ADDRESS_TEXT]; /* the address as text, for messages */
    int epoll;
    struct connection *connections; /* the receivers, then the senders */
    struct sender *senders;
    uint64_t *expected; /* [receiver * S + sender]: the SEQ that receiver waits for from it */
    long total, next_to_start, in_flight, alive, receivers_open, senders_open, not_started;
    enum phase phase;
    int64_t started, last_joined, phase_ends, window_started, window_ended;
    struct bench_histogram deliveries; /* each delivery inside the window: read - sent */
    struct bench_histogram messages;   /* each message completed inside it: last read - sent */
    uint64_t deliveries_total, messages_total, sender_deliveries, publish_replies;
    long connect_failures, dropped, wrong_replies;
};

/* Describes one error on stderr, for the first few only: the rest are only counted. */
static void report_error(const struct run *run, const char *what, int error_code)
{
    long errors = run->connect_failures + run->dropped + run->wrong_replies; /* incl. this one */
    if (errors <= ERRORS_SHOWN) {
        char reason[128];
        fprintf(stderr, "fanout: %s %s%s%s\n", what, run->where, error_code ? ": " : "",
                error_code ? lab_error_text(error_code, reason, sizeof reason) : "");
    }
    if (errors == ERRORS_SHOWN + 1) {
        fprintf(stderr, "fanout: more errors: only counted from here on\n");
    }
}

/* Tells epoll what c waits for, if that changed. */
static void watch(struct run *run, struct connection *c, uint32_t events)
{
    if (events == c->events) {
        return;
    }
    struct epoll_event event = {.events = events, .data.ptr = c};
    if (epoll_ctl(run->epoll, EPOLL_CTL_MOD, c->fd, &event) != 0) {
        lab_die("epoll_ctl", NULL, errno);
    }
    c->events = events;
}

static void send_more(struct run *run, struct sender *sender);

/* Whether a moment falls inside the measured window (the last round may run past it). */
static int in_window(const struct run *run, int64_t now)
{
    return run->phase == PHASE_WINDOW && now >= run->window_started && now < run->phase_ends;
}

/* Every receiver has message sender->completed: counts it, and times it in the window. */
static void complete(struct run *run, struct sender *sender, int64_t now)
{
    const struct slot *slot = &sender->slots[sender->completed % run->settings.in_flight];
    sender->completed++;
    if (in_window(run, now)) {
        bench_histogram_add(&run->messages, now - slot->sent_at);
    }
    run->messages_total++;
}

/* A receiver has message seq of sender (or is gone and will never want it). Messages
 * complete in the order they were sent, as each receiver gets a sender's messages in that
 * order; each one complete lets the sender send another. */
static void one_fewer_waiting(struct run *run, struct sender *sender, uint64_t seq, int64_t now)
{
    uint64_t in_flight = (uint64_t)run->settings.in_flight;
    if (--sender->slots[seq % in_flight].waiting > 0 || seq != sender->completed) {
        return;
    }
    while (sender->completed < sender->sent &&
           sender->slots[sender->completed % in_flight].waiting == 0) {
        complete(run, sender, now);
    }
    send_more(run, sender);
}

/* Closes c for good (its failure is counted already). A receiver's messages still on their
 * way stop waiting for it; a sender sends no more. */
static void drop(struct run *run, struct connection *c)
{
    enum state was = c->state;
    close(c->fd); /* also removes it from the epoll set */
    c->state = CLOSED;
    run->alive--;
    if (was == CONNECTING || was == JOINING) {
        run->in_flight--;
        return;
    }
    if (c->sender) {
        run->senders_open--;
        return;
    }
    run->receivers_open--;
    int64_t now = bench_now_ns();
    for (long s = 0; s < run->settings.senders; s++) {
        struct sender *sender = &run->senders[s];
        uint64_t end = sender->sent; /* complete() may send more: those never waited for c */
        for (uint64_t seq = run->expected[c->number * run->settings.senders + s]; seq < end;
             seq++) {
            one_fewer_waiting(run, sender, seq, now);
        }
    }
}

/* Sends what is left of c's output; if the socket takes only part, waits to write the rest.
 * Returns 1 when all of it is sent. */
static int flush(struct run *run, struct connection *c)
{
    while (c->output_sent < c->output_length) {
        ssize_t sent = send(c->fd, c->output + c->output_sent, c->output_length - c->output_sent,
                            MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                watch(run, c, EPOLLIN | EPOLLOUT);
                return 0;
            }
            if (errno == EINTR) {
                continue;
            }
            run->dropped++; /* EPIPE, ECONNRESET: the server closed it */
            report_error(run, "send", errno);
            drop(run, c);
            return 0;
        }
        c->output_sent += (size_t)sent;
    }
    c->output_length = c->output_sent = 0;
    watch(run, c, EPOLLIN);
    return 1;
}

/* Writes message sender->sent into its connection's output: the room's line, or PUBLISH. */
static void compose(struct run *run, struct sender *sender, int64_t now)
{
    const struct settings *s = &run->settings;
    char text[MESSAGE_MAX];
    int length = snprintf(text, sizeof text, "m %ld %llu %lld ", sender->connection->number,
                          (unsigned long long)sender->sent, (long long)now);
    memset(text + length, '.', (size_t)(s->size - length)); /* MESSAGE_MIN leaves room */
    struct connection *c = sender->connection;
    size_t used = 0;
    if (s->redis) {
        used = (size_t)snprintf(c->output, sizeof c->output,
                                "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%ld\r\n", strlen(s->channel),
                                s->channel, s->size);
    }
    memcpy(c->output + used, text, (size_t)s->size);
    used += (size_t)s->size;
    used += (size_t)snprintf(c->output + used, sizeof c->output - used, s->redis ? "\r\n" : "\n");
    c->output_length = used;
    c->output_sent = 0;
}

/* Sends the sender's next messages while fewer than IN-FLIGHT are on their way. */
static void send_more(struct run *run, struct sender *sender)
{
    struct connection *c = sender->connection;
    while ((run->phase == PHASE_WARMUP || run->phase == PHASE_WINDOW) && c->state == READY &&
           c->output_length == 0 && run->receivers_open > 0 &&
           sender->sent - sender->completed < (uint64_t)run->settings.in_flight) {
        int64_t now = bench_now_ns();
        struct slot *slot = &sender->slots[sender->sent % run->settings.in_flight];
        *slot = (struct slot){run->receivers_open, now};
        compose(run, sender, now);
        sender->sent++;
        if (!flush(run, c)) {
            return; /* the rest goes when the socket has room (EPOLLOUT) */
        }
    }
}

static void joined(struct run *run, struct connection *c)
{
    c->state = READY;
    run->in_flight--;
    run->last_joined = bench_now_ns();
    if (c->sender) {
        run->senders_open++;
    } else {
        run->receivers_open++;
    }
}

/* Starts a non-blocking connect() for the next connection not yet started. */
static void start_connecting(struct run *run)
{
    struct connection *c = &run->connections[run->next_to_start++];
    c->fd = socket(run->address.ss_family, SOCK_STREAM, 0);
    if (c->fd < 0 || lab_set_nonblocking(c->fd) != 0) {
        run->connect_failures++;
        report_error(run, "socket", errno);
        if (c->fd >= 0) {
            close(c->fd);
        }
        c->state = CLOSED;
        return;
    }
    run->alive++;
    run->in_flight++;
    c->state = CONNECTING;
    c->events = EPOLLOUT; /* writable = the handshake finished, one way or the other */
    struct epoll_event event = {.events = c->events, .data.ptr = c};
    if (epoll_ctl(run->epoll, EPOLL_CTL_ADD, c->fd, &event) != 0) {
        lab_die("epoll_ctl", NULL, errno);
    }
    if (connect(c->fd, (struct sockaddr *)&run->address, run->address_length) != 0 &&
        errno != EINPROGRESS) {
        run->connect_failures++;
        report_error(run, "connect", errno);
        drop(run, c);
    }
}

/* The handshake of c ended: a Redis receiver subscribes, a Redis sender is ready, a room
 * client waits for its "* you are" line. */
static void finish_connecting(struct run *run, struct connection *c)
{
    int error_code = 0;
    socklen_t length = sizeof error_code;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error_code, &length) != 0) {
        error_code = errno;
    }
    if (error_code != 0) {
        run->connect_failures++;
        report_error(run, "connect", error_code);
        drop(run, c);
        return;
    }
    int on = 1; /* a message is sent whole and at once: never hold it back (Nagle) */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    c->state = JOINING;
    watch(run, c, EPOLLIN);
    if (run->settings.redis && c->sender) {
        joined(run, c);
    } else if (run->settings.redis) {
        const char *channel = run->settings.channel;
        c->output_length =
            (size_t)snprintf(c->output, sizeof c->output, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
                             strlen(channel), channel);
        c->output_sent = 0;
        flush(run, c);
    }
}

static void wrong_reply(struct run *run, struct connection *c, const char *what)
{
    run->wrong_replies++;
    report_error(run, what, 0);
    drop(run, c);
}

/* Reads the whole number at text[*at] up to a space; -1 if there is none. */
static int parse_number(const char *text, size_t length, size_t *at, uint64_t *value)
{
    size_t start = *at;
    *value = 0;
    while (*at < length && text[*at] >= '0' && text[*at] <= '9' && *at - start < 19) {
        *value = *value * 10 + (uint64_t)(text[*at] - '0');
        (*at)++;
    }
    if (*at == start || *at == length || text[*at] != ' ') {
        return -1;
    }
    (*at)++;
    return 0;
}

/* A message reached receiver c: checks it is the next of its sender's, and times it. */
static void delivered(struct run *run, struct connection *c, const char *text, size_t length)
{
    uint64_t number, seq, sent_at;
    size_t at = 2;
    if (length < 2 || memcmp(text, "m ", 2) != 0 || parse_number(text, length, &at, &number) ||
        parse_number(text, length, &at, &seq) || parse_number(text, length, &at, &sent_at) ||
        number >= (uint64_t)run->settings.senders) {
        wrong_reply(run, c, "a message that fanout did not send, from");
        return;
    }
    uint64_t *expected = &run->expected[c->number * run->settings.senders + (long)number];
    if (seq != *expected) {
        wrong_reply(run, c, "a message out of order or one missing, from");
        return;
    }
    ++*expected;
    int64_t now = bench_now_ns();
    if (in_window(run, now)) {
        bench_histogram_add(&run->deliveries, now - (int64_t)sent_at);
    }
    run->deliveries_total++;
    one_fewer_waiting(run, &run->senders[number], seq, now);
}

/* One line from the room, "\n" left out. */
static void room_line(struct run *run, struct connection *c, const char *line, size_t length)
{
    if (length >= 2 && memcmp(line, "* ", 2) == 0) { /* the room's own: joined, left, ... */
        if (c->state == JOINING && length >= 10 && memcmp(line, "* you are ", 10) == 0) {
            joined(run, c);
        }
        return;
    }
    const char *colon = memchr(line, ':', length);
    if (c->state != READY || colon == NULL || (size_t)(colon - line) + 2 > length ||
        colon[1] != ' ' || (length >= 6 && memcmp(line, "error:", 6) == 0)) {
        wrong_reply(run, c, "a line that is not NAME: text, from");
        return;
    }
    if (c->sender) {
        run->sender_deliveries++; /* another sender's line: read, not timed */
        return;
    }
    size_t prefix = (size_t)(colon - line) + 2;
    delivered(run, c, line + prefix, length - prefix);
}

/* One RESP value from Redis: type '*' (an array's length), ':' (an integer), '$' (a bulk
 * string), '+' or '-' (a status or an error), with its text. */
static void redis_value(struct run *run, struct connection *c, char type, const char *text,
                        size_t length)
{
    if (type == '-') {
        wrong_reply(run, c, "an error reply from");
        return;
    }
    if (c->elements == 0) { /* not inside an array */
        if (type == '*') {
            c->elements = atol(text); /* text ends at "\r": atol stops there */
            c->element = 1;
            c->kind = OTHER;
        } else if (type == ':' && c->sender) {
            run->publish_replies++; /* PUBLISH answers how many subscribers it reached */
        } else if (type != '+') {
            wrong_reply(run, c, "an unexpected reply from");
        }
        return;
    }
    if (type == '*') {
        wrong_reply(run, c, "a nested array from");
        return;
    }
    if (c->element == 1) {
        c->kind = length == 7 && memcmp(text, "message", 7) == 0     ? MESSAGE
                  : length == 9 && memcmp(text, "subscribe", 9) == 0 ? SUBSCRIBE
                                                                     : OTHER;
    } else if (c->element == 3 && c->kind == MESSAGE && !c->sender && c->state == READY) {
        delivered(run, c, text, length);
    } else if (c->element == 3 && c->kind == SUBSCRIBE && c->state == JOINING) {
        joined(run, c);
    }
    if (c->state != CLOSED) {
        c->elements--;
        c->element++;
    }
}

/* Parses what c's input holds as RESP; returns the bytes taken (whole values only). */
static size_t parse_redis(struct run *run, struct connection *c)
{
    size_t at = 0;
    while (c->state != CLOSED && at < c->input_used) {
        const char *start = c->input + at;
        size_t left = c->input_used - at;
        if (c->bulk >= 0) { /* its bytes and "\r\n" */
            if (left < (size_t)c->bulk + 2) {
                break;
            }
            if (start[c->bulk] != '\r' || start[c->bulk + 1] != '\n') {
                wrong_reply(run, c, "a bulk string without its \\r\\n, from");
                break;
            }
            at += (size_t)c->bulk + 2;
            size_t bulk = (size_t)c->bulk;
            c->bulk = -1;
            redis_value(run, c, '$', start, bulk);
            continue;
        }
        const char *end = memchr(start, '\n', left);
        if (end == NULL) {
            break;
        }
        size_t length = (size_t)(end - start);
        at += length + 1;
        if (length < 2 || start[length - 1] != '\r') {
            wrong_reply(run, c, "a reply that is not RESP, from");
            break;
        }
        if (start[0] == '$') {
            long bulk = atol(start + 1);
            if (bulk > INPUT_SIZE - 2) {
                wrong_reply(run, c, "a bulk string longer than fanout reads, from");
                break;
            }
            c->bulk = bulk; /* -1: the null bulk string, no bytes follow */
            if (bulk < 0) {
                redis_value(run, c, '$', start, 0);
            }
            continue;
        }
        redis_value(run, c, start[0], start + 1, length - 2);
    }
    return at;
}

/* Parses what c's input holds as the room's lines; returns the bytes taken. */
static size_t parse_room(struct run *run, struct connection *c)
{
    size_t at = 0;
    while (c->state != CLOSED && at < c->input_used) {
        const char *start = c->input + at;
        const char *end = memchr(start, '\n', c->input_used - at);
        if (end == NULL) {
            break;
        }
        at += (size_t)(end - start) + 1;
        room_line(run, c, start, (size_t)(end - start));
    }
    return at;
}

/* Reads what arrived on c and carries out every whole line or RESP value in it. */
static void receive(struct run *run, struct connection *c)
{
    ssize_t got = recv(c->fd, c->input + c->input_used, sizeof c->input - c->input_used, 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
    }
    if (got <= 0) {
        if (c->state == JOINING) {
            run->connect_failures++;
        } else {
            run->dropped++; /* e.g. the room dropped it as too slow */
        }
        report_error(run, got == 0 ? "end of file: the server closed a connection to" : "recv",
                     got == 0 ? 0 : errno);
        drop(run, c);
        return;
    }
    c->input_used += (size_t)got;
    size_t taken = run->settings.redis ? parse_redis(run, c) : parse_room(run, c);
    if (c->state == CLOSED) {
        return;
    }
    memmove(c->input, c->input + taken, c->input_used - taken);
    c->input_used -= taken;
    if (c->input_used == sizeof c->input) {
        wrong_reply(run, c, "a line longer than fanout reads, from");
    }
}

static void handle_event(struct run *run, struct connection *c, uint32_t events)
{
    if (c->state == CLOSED) {
        return; /* dropped by an earlier event of this round */
    }
    if (c->state == CONNECTING) {
        finish_connecting(run, c);
        return;
    }
    if ((events & EPOLLOUT) && flush(run, c) && c->sender && c->state == READY) {
        send_more(run, &run->senders[c->number]);
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && c->state != CLOSED) {
        receive(run, c);
    }
}

/* ---- the timeline --------------------------------------------------------------------- */

/* Ends the connect part: connections not in yet count as failed, those never tried as
 * "not started"; the senders begin. */
static void end_connect_phase(struct run *run, int64_t now)
{
    for (long i = 0; i < run->total; i++) {
        struct connection *c = &run->connections[i];
        if (c->state == CONNECTING || c->state == JOINING) {
            run->connect_failures++;
            report_error(run, "connect or join (not in before --connect-timeout)", 0);
            drop(run, c);
        } else if (c->state == NOT_STARTED) {
            run->not_started++;
            c->state = CLOSED;
        }
    }
    int64_t took = (run->last_joined > 0 ? run->last_joined : now) - run->started;
    fprintf(stderr, "fanout: %ld of %ld receivers and %ld of %ld senders in after %.3f s\n",
            run->receivers_open, run->settings.receivers, run->senders_open, run->settings.senders,
            (double)took / 1e9);
    run->phase = PHASE_WARMUP;
    run->phase_ends = now + bench_seconds_to_ns(run->settings.warmup);
    for (long s = 0; s < run->settings.senders; s++) {
        send_more(run, &run->senders[s]);
    }
}

/* Moves to the next part of the run when the current one is over. */
static void advance(struct run *run, int64_t now)
{
    if (run->phase == PHASE_CONNECT &&
        ((run->next_to_start == run->total && run->in_flight == 0) || now >= run->phase_ends)) {
        end_connect_phase(run, now);
    }
    if (run->phase == PHASE_WARMUP && now >= run->phase_ends) {
        run->phase = PHASE_WINDOW;
        run->window_started = now;
        run->phase_ends = now + bench_seconds_to_ns(run->settings.duration);
        fprintf(stderr, "fanout: measuring for %.1f s\n", run->settings.duration);
    }
    int nobody = run->receivers_open == 0 || run->senders_open == 0;
    if (run->phase == PHASE_WINDOW && (now >= run->phase_ends || nobody)) {
        run->phase = PHASE_DONE;
        run->window_ended = now < run->phase_ends ? now : run->phase_ends;
    }
    if (run->phase == PHASE_WARMUP && nobody) {
        run->phase = PHASE_DONE; /* nobody left to send or to receive: nothing to measure */
    }
}

/* Milliseconds until the current part of the run ends (epoll_wait's timeout). */
static int wait_ms(const struct run *run, int64_t now)
{
    int64_t left = run->phase_ends - now;
    return left <= 0 ? 0 : (int)((left + 999999) / 1000000);
}

static void run_load(struct run *run)
{
    run->started = bench_now_ns();
    run->phase = PHASE_CONNECT;
    run->phase_ends = run->started + bench_seconds_to_ns(run->settings.connect_timeout);
    while (run->phase != PHASE_DONE) {
        while (run->phase == PHASE_CONNECT && run->next_to_start < run->total &&
               run->in_flight < CONNECTS_IN_FLIGHT) {
            start_connecting(run);
        }
        int64_t now = bench_now_ns();
        advance(run, now);
        if (run->phase == PHASE_DONE) {
            break;
        }
        struct epoll_event events[MAX_EVENTS];
        int ready = epoll_wait(run->epoll, events, MAX_EVENTS, wait_ms(run, now));
        if (ready < 0 && errno != EINTR) {
            lab_die("epoll_wait", NULL, errno);
        }
        for (int i = 0; i < ready; i++) {
            handle_event(run, events[i].data.ptr, events[i].events);
        }
    }
}

/* ---- the report ----------------------------------------------------------------------- */

static void print_percentile(const char *name, const struct bench_histogram *h, double share)
{
    if (h->total == 0) {
        printf(", \"%s\": null", name);
    } else {
        printf(", \"%s\": %.1f", name, bench_histogram_percentile_us(h, share));
    }
}

static void report(const struct run *run)
{
    const struct settings *s = &run->settings;
    const struct bench_histogram *d = &run->deliveries, *m = &run->messages;
    long errors = run->connect_failures + run->wrong_replies; /* dropped: said apart */
    double window = (double)(run->window_ended - run->window_started) / 1e9; /* 0: none */
    double per_second = window > 0 ? (double)d->total / window : 0.0;
    double messages_per_second = window > 0 ? (double)m->total / window : 0.0;
    int64_t took = (run->last_joined > 0 ? run->last_joined : run->started) - run->started;
    printf("{\"target\": \"%s\", \"receivers\": %ld, \"senders\": %ld, \"in_flight\": %ld, "
           "\"size\": %ld, \"warmup_seconds\": %.3f, \"window_seconds\": %.3f, "
           "\"receivers_open\": %ld, \"senders_open\": %ld, \"connect_seconds\": %.4f, "
           "\"deliveries\": %llu, \"deliveries_per_second\": %.1f",
           s->redis ? "redis" : "room", s->receivers, s->senders, s->in_flight, s->size, s->warmup,
           window, run->receivers_open, run->senders_open, (double)took / 1e9,
           (unsigned long long)d->total, per_second);
    print_percentile("p50_us", d, 0.50);
    print_percentile("p99_us", d, 0.99);
    print_percentile("p999_us", d, 0.999);
    printf(", \"messages\": %llu, \"messages_per_second\": %.1f", (unsigned long long)m->total,
           messages_per_second);
    print_percentile("message_p50_us", m, 0.50);
    print_percentile("message_p99_us", m, 0.99);
    printf(", \"deliveries_total\": %llu, \"messages_total\": %llu, \"sender_deliveries\": %llu, "
           "\"publish_replies\": %llu, \"errors\": %ld, \"connect_failures\": %ld, "
           "\"dropped\": %ld, \"wrong_replies\": %ld, \"not_started\": %ld}\n",
           (unsigned long long)run->deliveries_total, (unsigned long long)run->messages_total,
           (unsigned long long)run->sender_deliveries, (unsigned long long)run->publish_replies,
           errors, run->connect_failures, run->dropped, run->wrong_replies, run->not_started);
    fprintf(stderr,
            "fanout: %s, %ld receivers, %ld senders, %ld in flight, %.1f s window: "
            "%.0f deliveries/s (%.0f messages/s)",
            s->redis ? "redis" : "room", run->receivers_open, run->senders_open, s->in_flight,
            window, per_second, messages_per_second);
    if (d->total > 0) {
        fprintf(stderr, ", p50 %.1f us, p99 %.1f us", bench_histogram_percentile_us(d, 0.50),
                bench_histogram_percentile_us(d, 0.99));
    }
    fprintf(stderr, "; %ld errors, %ld dropped\n", errors, run->dropped);
}

int main(int argc, char **argv)
{
    lab_startup("fanout");
    if (lab_wants_help(argc, argv)) {
        print_usage();
        return 0;
    }
    static struct run run; /* static: two histograms of 32 KB, too big for a stack frame */
    read_settings(argc, argv, &run.settings);
    const struct settings *s = &run.settings;
    bench_resolve_loopback(s->host, s->port, &run.address, &run.address_length);
    lab_address_text((struct sockaddr *)&run.address, run.where, sizeof run.where);
    run.total = s->receivers + s->senders;
    bench_allow_descriptors(run.total + 16); /* + stdin, stdout, stderr, epoll and some spare */
    run.connections = calloc((size_t)run.total, sizeof *run.connections);
    run.senders = calloc((size_t)s->senders, sizeof *run.senders);
    run.expected = calloc((size_t)(s->receivers * s->senders), sizeof *run.expected);
    run.epoll = epoll_create1(0);
    if (run.connections == NULL || run.senders == NULL || run.expected == NULL) {
        lab_die("calloc", NULL, errno);
    }
    if (run.epoll < 0) {
        lab_die("epoll_create1", NULL, errno);
    }
    for (long i = 0; i < run.total; i++) {
        struct connection *c = &run.connections[i];
        c->sender = i >= s->receivers; /* receivers first: in before anyone sends */
        c->number = c->sender ? i - s->receivers : i;
        c->bulk = -1;
    }
    for (long i = 0; i < s->senders; i++) {
        run.senders[i].connection = &run.connections[s->receivers + i];
        run.senders[i].slots = calloc((size_t)s->in_flight, sizeof *run.senders[i].slots);
        if (run.senders[i].slots == NULL) {
            lab_die("calloc", NULL, errno);
        }
    }
    run_load(&run);
    report(&run);
    if (run.receivers_open == 0 || run.senders_open == 0 || run.messages_total == 0) {
        fprintf(stderr, "fanout: %s\n",
                run.receivers_open == 0 ? "no receiver got in or stayed"
                : run.senders_open == 0 ? "no sender got in or stayed"
                                        : "no message reached every receiver");
        return 1;
    }
    return 0;
}
