/*
 * loadgen.c - the lab's load generator: how many echo round trips a server completes per
 * second, and how long each one waits, with N clients talking and M more connected but silent.
 *
 * Each active connection keeps exactly one request outstanding: it sends a line of SIZE
 * bytes ("\n" included), waits until the whole line has come back, then sends the next one
 * at once. The server's speed sets the pace (a closed loop): nobody floods it. Each idle
 * connection says one line once - so we know the server serves it, not just that the kernel
 * queued it - and then stays silent. A run has three parts:
 *   connect  open every connection, at most CONNECTS_IN_FLIGHT at a time, until all are open
 *            or --connect-timeout passes; the time until the last one opened is reported
 *   warm-up  the active connections talk, nothing is counted (threads start, caches fill)
 *   window   only replies completed inside the window are counted and timed
 * Then it prints one JSON line on stdout (for tests/bench/run.py) and one line for people on
 * stderr. A connection the server refuses, closes or answers wrongly is an error: counted
 * and closed, the others go on; only when every connection has failed does it give up.
 *
 * Linux only (epoll), one thread, loopback only (127.0.0.0/8 or ::1): it is a tool for
 * comparing the lab's servers on one machine, where it shares the cores with the server it
 * measures (docs/benchmarks.md says what that means for the figures).
 *
 * Run:    build-bench/tests/bench/loadgen [OPTIONS] [HOST [PORT]]   (127.0.0.1 5050)
 *         e.g. loadgen --connections 100 --warmup 1 --duration 5 127.0.0.1 5050
 * See:    tests/bench/run.py, which races every server of the lab with it.
 */
#include "bench_common.h"

#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define CONNECTIONS_LIMIT 10000
#define IDLE_LIMIT 20000
#define SECONDS_LIMIT 120.0      /* the longest window; warm-up and connect take at most 60 */
#define LINE_SIZE_MAX (1024 + 1) /* the lab's longest line (LAB_LINE_MAX) and its "\n" */
#define CONNECTS_IN_FLIGHT 100   /* handshakes at once: more would overflow accept queues */
#define ERRORS_SHOWN 5           /* errors described on stderr; the rest are only counted */
#define MAX_EVENTS 256

/* ---- the command line --------------------------------------------------------------- */

struct settings {
    long connections, idle, size;
    double warmup, duration, connect_timeout;
    const char *host, *port;
};

static void print_usage(void)
{
    printf("usage: loadgen [OPTIONS] [HOST [PORT]]\n"
           "Load generator for the lab's echo servers (default %s %s; loopback only).\n"
           "Each active connection sends a line, waits for its echo, sends the next.\n"
           "  --connections N       active connections, 0-%d (default 10)\n"
           "  --idle M              idle connections: one line each, then silent, 0-%d\n"
           "                        (default 0)\n"
           "  --size BYTES          bytes per line, \"\\n\" included, 2-%d (default 64)\n"
           "  --warmup SECONDS      talk without counting first, 0-60 (default 1)\n"
           "  --duration SECONDS    the measured window, 0.1-%.0f (default 5)\n"
           "  --connect-timeout S   how long opening the connections may take, 0.1-60\n"
           "                        (default 10)\n"
           "Prints one JSON line on stdout and a summary on stderr. Exit status 0, or 1 when\n"
           "every connection failed or no request was answered, 2 for a usage error.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT, CONNECTIONS_LIMIT, IDLE_LIMIT, LINE_SIZE_MAX,
           SECONDS_LIMIT);
}

static void read_settings(int argc, char **argv, struct settings *s)
{
    *s = (struct settings){10, 0, 64, 1.0, 5.0, 10.0, LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT};
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
        if (strcmp(name, "--connections") == 0) {
            s->connections = bench_parse_count(name, value, 0, CONNECTIONS_LIMIT);
        } else if (strcmp(name, "--idle") == 0) {
            s->idle = bench_parse_count(name, value, 0, IDLE_LIMIT);
        } else if (strcmp(name, "--size") == 0) {
            s->size = bench_parse_count(name, value, 2, LINE_SIZE_MAX);
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
    if (s->connections + s->idle == 0) {
        lab_usage_error("nothing to do: --connections and --idle are both 0", NULL);
    }
}

/* ---- connections ---------------------------------------------------------------------- */

enum state {
    NOT_STARTED,
    CONNECTING,    /* connect() in progress: waiting for writability, then SO_ERROR */
    SAYING_HELLO,  /* idle: its one line sent, waiting for the echo */
    WAITING_REPLY, /* active: a request sent, waiting for the echo */
    SILENT,        /* idle, answered once: now only watched for the server closing it */
    CLOSED
};

struct connection {
    int fd;
    int active; /* 1: talks all the time; 0: idle */
    enum state state;
    uint32_t events;        /* what epoll watches for now */
    char *line;             /* the line in flight, which is also the echo expected */
    size_t sent, received;  /* bytes of line sent, and of its echo received */
    int64_t sent_at;        /* when the line was sent (ns) */
    unsigned long sequence; /* lines this connection has sent */
    int answered_in_window; /* at least one reply completed inside the window */
};

enum phase { PHASE_CONNECT, PHASE_WARMUP, PHASE_WINDOW, PHASE_DONE };

struct run {
    struct settings settings;
    struct sockaddr_storage address;
    socklen_t address_length;
    char where[LAB_ADDRESS_TEXT]; /* the address as text, for messages */
    int epoll;
    struct connection *connections;
    long total, next_to_start, in_flight, open, alive;
    enum phase phase;
    int64_t started, last_opened, phase_ends, window_started, window_ended;
    struct bench_histogram latencies;
    uint64_t replies_total;
    long connect_failures, closed_by_server, wrong_replies, unanswered, not_started;
};

/* Describes one error on stderr ("loadgen: connect 127.0.0.1:5050: Connection refused"),
 * for the first few only: 10,000 failing connections would otherwise bury the summary. */
static void report_error(const struct run *run, const char *what, int error_code)
{
    long errors =
        run->connect_failures + run->closed_by_server + run->wrong_replies; /* incl. this one */
    if (errors <= ERRORS_SHOWN) {
        char reason[128];
        fprintf(stderr, "loadgen: %s %s%s%s\n", what, run->where, error_code ? ": " : "",
                error_code ? lab_error_text(error_code, reason, sizeof reason) : "");
    }
    if (errors == ERRORS_SHOWN + 1) {
        fprintf(stderr, "loadgen: more errors: only counted from here on\n");
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

/* A connection that was open or opening is closed for good (its failure counted already). */
static void drop(struct run *run, struct connection *c)
{
    if (c->state == CONNECTING || c->state == SAYING_HELLO) {
        run->in_flight--;
    }
    if (c->state == SILENT || c->state == WAITING_REPLY) {
        run->open--;
    }
    close(c->fd); /* also removes it from the epoll set */
    c->state = CLOSED;
    run->alive--;
}

/* Writes the next line into c->line: its connection and sequence number, then dots. */
static void compose_line(struct connection *c, long number, size_t size)
{
    char label[48];
    int length = snprintf(label, sizeof label, "%ld %lu ", number, c->sequence);
    memset(c->line, '.', size - 1);
    memcpy(c->line, label, (size_t)length < size - 1 ? (size_t)length : size - 1);
    c->line[size - 1] = '\n';
    c->sequence++;
    c->sent = c->received = 0;
}

/* Sends what is left of c's line; if the socket takes only part, waits to write the rest. */
static void send_rest(struct run *run, struct connection *c)
{
    size_t size = (size_t)run->settings.size;
    while (c->sent < size) {
        ssize_t sent = send(c->fd, c->line + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                watch(run, c, EPOLLIN | EPOLLOUT);
                return;
            }
            if (errno == EINTR) {
                continue;
            }
            run->closed_by_server++; /* EPIPE, ECONNRESET: the server has gone */
            report_error(run, "send", errno);
            drop(run, c);
            return;
        }
        c->sent += (size_t)sent;
    }
    watch(run, c, EPOLLIN);
}

static void send_line(struct run *run, struct connection *c)
{
    compose_line(c, c - run->connections, (size_t)run->settings.size);
    c->sent_at = bench_now_ns();
    send_rest(run, c);
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

/* The handshake of c ended: opens it (an active connection sends its first request, an
 * idle one its hello) or counts the failure. */
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
    int on = 1; /* a line is sent whole and at once: never hold it back (Nagle) */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (c->active) {
        run->in_flight--;
        run->open++;
        run->last_opened = bench_now_ns();
        c->state = WAITING_REPLY;
    } else {
        c->state = SAYING_HELLO;
    }
    send_line(run, c);
}

/* A whole echo arrived on c. */
static void reply_complete(struct run *run, struct connection *c)
{
    int64_t now = bench_now_ns();
    if (c->state == SAYING_HELLO) {
        run->in_flight--;
        run->open++;
        if (run->phase == PHASE_CONNECT) {
            run->last_opened = now;
        } else {
            run->unanswered--; /* answered late, e.g. by a worker that became free */
        }
        c->state = SILENT;
        watch(run, c, EPOLLIN); /* the server closing it is still news */
        return;
    }
    run->replies_total++;
    if (run->phase == PHASE_WINDOW && now >= run->window_started) {
        bench_histogram_add(&run->latencies, now - c->sent_at);
        c->answered_in_window = 1;
    }
    if (run->phase != PHASE_DONE) {
        send_line(run, c);
    }
}

/* Reads what arrived on c and checks it, byte for byte, against the line it sent. */
static void receive(struct run *run, struct connection *c)
{
    char bytes[4096];
    ssize_t got = recv(c->fd, bytes, sizeof bytes, 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
    }
    if (got <= 0) {
        run->closed_by_server++;
        report_error(run, got == 0 ? "end of file: the server closed a connection to" : "recv",
                     got == 0 ? 0 : errno);
        drop(run, c);
        return;
    }
    size_t expected = (size_t)run->settings.size - c->received;
    int waiting = c->state == SAYING_HELLO || c->state == WAITING_REPLY;
    if (!waiting || (size_t)got > expected || c->received + (size_t)got > c->sent ||
        memcmp(bytes, c->line + c->received, (size_t)got) != 0) {
        run->wrong_replies++; /* e.g. "error: server busy": the server turned it away */
        report_error(run, "a reply that is not the echo of the line sent, from", 0);
        drop(run, c);
        return;
    }
    c->received += (size_t)got;
    if (c->received == (size_t)run->settings.size) {
        reply_complete(run, c);
    }
}

static void handle_event(struct run *run, struct connection *c, uint32_t events)
{
    if (c->state == CONNECTING) {
        finish_connecting(run, c);
        return;
    }
    if ((events & EPOLLOUT) && c->state != CLOSED) {
        send_rest(run, c);
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && c->state != CLOSED) {
        receive(run, c);
    }
}

/* ---- the timeline --------------------------------------------------------------------- */

/* Ends the connect part: handshakes still going count as failed, hellos still unanswered
 * as "unanswered" (they stay open: a server may serve them later, e.g. a freed worker), and
 * connections never tried as "not started". */
static void end_connect_phase(struct run *run, int64_t now)
{
    for (long i = 0; i < run->total; i++) {
        struct connection *c = &run->connections[i];
        if (c->state == CONNECTING) {
            run->connect_failures++;
            report_error(run, "connect (no answer before --connect-timeout)", 0);
            drop(run, c);
        } else if (c->state == SAYING_HELLO) {
            run->unanswered++;
        } else if (c->state == NOT_STARTED) {
            run->not_started++; /* no time left to try it: not the server's error */
            c->state = CLOSED;
        }
    }
    int64_t took = (run->open > 0 ? run->last_opened : now) - run->started;
    fprintf(stderr, "loadgen: %ld of %ld connections open in %.3f s\n", run->open, run->total,
            (double)took / 1e9);
    run->phase = PHASE_WARMUP;
    run->phase_ends = now + bench_seconds_to_ns(run->settings.warmup);
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
        fprintf(stderr, "loadgen: measuring for %.1f s\n", run->settings.duration);
    }
    if (run->phase == PHASE_WINDOW && (now >= run->phase_ends || run->alive == 0)) {
        run->phase = PHASE_DONE;
        run->window_ended = now < run->phase_ends ? now : run->phase_ends;
    }
    if (run->phase == PHASE_WARMUP && run->alive == 0) {
        run->phase = PHASE_DONE; /* every connection failed: nothing left to measure */
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

static long starved_count(const struct run *run)
{
    long starved = 0;
    for (long i = 0; i < run->total; i++) {
        const struct connection *c = &run->connections[i];
        starved += c->active && c->state != CLOSED && !c->answered_in_window;
    }
    return starved;
}

static void report(const struct run *run)
{
    const struct settings *s = &run->settings;
    const struct bench_histogram *h = &run->latencies;
    long errors = run->connect_failures + run->closed_by_server + run->wrong_replies;
    double window = (double)(run->window_ended - run->window_started) / 1e9; /* 0: none */
    double per_second = window > 0 ? (double)h->total / window : 0.0;
    long starved = starved_count(run);
    int64_t took = (run->open > 0 ? run->last_opened : run->started) - run->started;
    printf("{\"active\": %ld, \"idle\": %ld, \"size\": %ld, \"warmup_seconds\": %.3f, "
           "\"window_seconds\": %.3f, \"open\": %ld, \"connect_seconds\": %.4f, "
           "\"replies\": %llu, \"requests_per_second\": %.1f",
           s->connections, s->idle, s->size, s->warmup, window, run->open, (double)took / 1e9,
           (unsigned long long)h->total, per_second);
    print_percentile("p50_us", h, 0.50);
    print_percentile("p99_us", h, 0.99);
    print_percentile("p999_us", h, 0.999);
    printf(", \"replies_total\": %llu, \"starved\": %ld, \"unanswered\": %ld, "
           "\"not_started\": %ld, \"errors\": %ld, \"connect_failures\": %ld, "
           "\"closed_by_server\": %ld, \"wrong_replies\": %ld}\n",
           (unsigned long long)run->replies_total, starved, run->unanswered, run->not_started,
           errors, run->connect_failures, run->closed_by_server, run->wrong_replies);
    fprintf(stderr, "loadgen: %ld active + %ld idle, %.1f s window: %.0f replies/s", s->connections,
            s->idle, window, per_second);
    if (h->total > 0) {
        fprintf(stderr, ", p50 %.1f us, p99 %.1f us, p99.9 %.1f us",
                bench_histogram_percentile_us(h, 0.50), bench_histogram_percentile_us(h, 0.99),
                bench_histogram_percentile_us(h, 0.999));
    }
    fprintf(stderr, "; %ld errors, %ld starved\n", errors, starved);
}

int main(int argc, char **argv)
{
    lab_startup("loadgen");
    if (lab_wants_help(argc, argv)) {
        print_usage();
        return 0;
    }
    static struct run run; /* static: the histogram is 32 KB, too big for a stack frame */
    read_settings(argc, argv, &run.settings);
    bench_resolve_loopback(run.settings.host, run.settings.port, &run.address, &run.address_length);
    lab_address_text((struct sockaddr *)&run.address, run.where, sizeof run.where);
    run.total = run.settings.connections + run.settings.idle;
    bench_allow_descriptors(run.total + 16); /* + stdin, stdout, stderr, epoll and some spare */
    run.connections = calloc((size_t)run.total, sizeof *run.connections);
    run.epoll = epoll_create1(0);
    if (run.connections == NULL || run.epoll < 0) {
        lab_die(run.epoll < 0 ? "epoll_create1" : "calloc", NULL, errno);
    }
    for (long i = 0; i < run.total; i++) {
        run.connections[i].active = i < run.settings.connections; /* actives first */
        run.connections[i].line = malloc((size_t)run.settings.size);
        if (run.connections[i].line == NULL) {
            lab_die("malloc", NULL, errno);
        }
    }
    run_load(&run);
    report(&run);
    if (run.open == 0 || (run.settings.connections > 0 && run.replies_total == 0)) {
        fprintf(stderr, "loadgen: %s\n",
                run.open == 0 ? "no connection could be opened" : "no request was answered");
        return 1;
    }
    return 0;
}
