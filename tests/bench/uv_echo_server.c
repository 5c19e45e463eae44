/*
 * uv_echo_server.c - the benchmark's outside reference: an echo server on libuv, the event
 * loop library a programmer would pick instead of writing the loop of lessons 08-11.
 *
 * libuv runs the loop (epoll on Linux) and calls back: on_connection when a client can be
 * accepted, on_read with the bytes that arrived, after_write when a queued answer has been
 * sent. It is written the way libuv is used for speed: every read lands in one buffer, and
 * the answer is first tried at once (uv_try_write); only what the socket does not take is
 * copied and queued (uv_write).
 * It echoes bytes, not lines: whatever arrives goes back as it came. For lines of at most
 * 1024 bytes ending in "\n" - all that tests/bench/loadgen sends - that is exactly what the
 * lab's servers answer, so the same load generator measures both. (The lab's servers differ
 * only beyond that: they drop a "\r" before "\n" and answer a longer line with an error.)
 * Like them it never holds unbounded memory for a client that does not read: above
 * WRITE_QUEUE_LIMIT unsent bytes it stops reading that client until they are sent.
 *
 * Run:    build-bench/tests/bench/uv_echo_server [PORT [BIND-ADDRESS]]   (5050 127.0.0.1)
 *         BIND-ADDRESS is numeric (127.0.0.1, ::1); port 0 picks a free port. It prints
 *         "listening on ADDRESS:PORT" first, as every server of the lab does.
 * Needs:  libuv (Debian: apt-get install libuv1-dev); CMake builds it only where it is found.
 * See:    tests/bench/run.py, docs/benchmarks.md.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BACKLOG SOMAXCONN             /* the lab's servers listen with the same backlog */
#define WRITE_QUEUE_LIMIT (64 * 1024) /* unsent bytes per client before reading pauses */

/* A client: the libuv handle first, so that a pointer to it is a pointer to the client. */
struct client {
    uv_tcp_t handle;
    int reading_paused; /* 1 while WRITE_QUEUE_LIMIT bytes wait to be sent */
};

/* The rest of an answer the socket did not take at once: the request libuv tracks, and a
 * copy of the bytes, in one allocation. */
struct answer {
    uv_write_t request;
    char bytes[];
};

/* Where every read lands. One thread runs the loop, and each read is answered (sent or
 * copied) before the next one, so one buffer serves every client. */
static char received[64 * 1024];

static void print_usage(void)
{
    printf("usage: uv_echo_server [PORT [BIND-ADDRESS]]\n"
           "Echo server on libuv, the benchmark's reference: sends back every byte it\n"
           "receives, on BIND-ADDRESS:PORT (default %s:%s; a numeric address; port 0\n"
           "picks a free port).\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

/* Prints "uv_echo_server: call where: reason" for a libuv error code (a negative errno). */
static void warn_uv(const char *call, const char *where, int error_code)
{
    fprintf(stderr, "%s: %s%s%s: %s\n", lab_program(), call, where ? " " : "", where ? where : "",
            uv_strerror(error_code));
}

static void free_client(uv_handle_t *handle)
{
    free(handle); /* the handle is the first member of struct client */
}

static void close_client(uv_stream_t *stream)
{
    if (!uv_is_closing((uv_handle_t *)stream)) {
        uv_close((uv_handle_t *)stream, free_client); /* pending writes are cancelled */
    }
}

/* libuv asks for a buffer before each read; the bytes come to on_read in it. */
static void allocate(uv_handle_t *handle, size_t suggested_size, uv_buf_t *buffer)
{
    (void)handle;
    (void)suggested_size;
    *buffer = uv_buf_init(received, sizeof received);
}

static void on_read(uv_stream_t *stream, ssize_t length, const uv_buf_t *buffer);

static void after_write(uv_write_t *request, int status)
{
    uv_stream_t *stream = request->handle; /* read before the request is freed */
    free(request);                         /* the request is the first member of the answer */
    if (status < 0) {
        close_client(stream); /* e.g. reset by the client */
        return;
    }
    struct client *client = (struct client *)stream;
    if (client->reading_paused && stream->write_queue_size < WRITE_QUEUE_LIMIT) {
        client->reading_paused = 0;
        uv_read_start(stream, allocate, on_read);
    }
}

static void after_shutdown(uv_shutdown_t *request, int status)
{
    (void)status;
    close_client(request->handle);
    free(request);
}

/* The client sent end of file: finish sending its answers, then close (a half-close). */
static void finish_client(uv_stream_t *stream)
{
    uv_shutdown_t *request = malloc(sizeof *request);
    if (request == NULL || uv_shutdown(request, stream, after_shutdown) != 0) {
        free(request);
        close_client(stream);
    }
}

/* Copies the bytes the socket did not take and queues them; libuv sends them when it can. */
static void queue_rest(uv_stream_t *stream, const char *bytes, size_t length)
{
    struct answer *answer = malloc(sizeof *answer + length);
    if (answer == NULL) {
        close_client(stream);
        return;
    }
    memcpy(answer->bytes, bytes, length);
    uv_buf_t rest = uv_buf_init(answer->bytes, (unsigned int)length);
    if (uv_write(&answer->request, stream, &rest, 1, after_write) != 0) {
        free(answer);
        close_client(stream);
        return;
    }
    if (stream->write_queue_size >= WRITE_QUEUE_LIMIT) { /* a client that does not read */
        ((struct client *)stream)->reading_paused = 1;
        uv_read_stop(stream);
    }
}

static void on_read(uv_stream_t *stream, ssize_t length, const uv_buf_t *buffer)
{
    if (length == UV_EOF) {
        finish_client(stream);
        return;
    }
    if (length < 0) {
        close_client(stream); /* a reset or another error: the client is gone */
        return;
    }
    /* The answer is the bytes received. Try to send them now: the socket almost always takes
     * them all, and then nothing is copied or queued. (UV_EAGAIN: it took none, or earlier
     * answers are still queued and must go first.) */
    uv_buf_t answer = uv_buf_init(buffer->base, (unsigned int)length);
    int sent = length == 0 ? 0 : uv_try_write(stream, &answer, 1);
    if (sent == UV_EAGAIN) {
        sent = 0;
    }
    if (sent < 0) {
        close_client(stream);
    } else if (sent < length) {
        queue_rest(stream, buffer->base + sent, (size_t)(length - sent));
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    if (status < 0) {
        warn_uv("accept", NULL, status);
        return;
    }
    struct client *client = calloc(1, sizeof *client);
    if (client == NULL) {
        return; /* the connection stays queued; libuv offers it again */
    }
    uv_tcp_init(listener->loop, &client->handle);
    if (uv_accept(listener, (uv_stream_t *)&client->handle) != 0) {
        close_client((uv_stream_t *)&client->handle);
        return;
    }
    uv_read_start((uv_stream_t *)&client->handle, allocate, on_read);
}

/* Reads a numeric IPv4 or IPv6 address and a port into *address; exits if it is neither. */
static void parse_address(const char *host, const char *port, struct sockaddr_storage *address)
{
    long number;
    lab_parse_count(port, 65535, &number); /* lab_server_arguments has checked it */
    if (uv_ip4_addr(host, (int)number, (struct sockaddr_in *)address) != 0 &&
        uv_ip6_addr(host, (int)number, (struct sockaddr_in6 *)address) != 0) {
        lab_usage_error("invalid BIND-ADDRESS (expected a numeric address)", host);
    }
}

int main(int argc, char **argv)
{
    lab_startup("uv_echo_server");
    if (lab_wants_help(argc, argv)) {
        print_usage();
        return 0;
    }
    const char *port;
    const char *host;
    lab_server_arguments(argc, argv, 0, &port, &host);
    signal(SIGPIPE, SIG_IGN); /* a write to a departed client fails instead of killing us */

    struct sockaddr_storage address;
    parse_address(host, port, &address);
    char where[LAB_ADDRESS_TEXT];
    lab_address_text((const struct sockaddr *)&address, where, sizeof where);

    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t listener;
    uv_tcp_init(loop, &listener);
    /* libuv sets SO_REUSEADDR itself; a busy port may show up only at uv_listen. */
    int error_code = uv_tcp_bind(&listener, (const struct sockaddr *)&address, 0);
    if (error_code == 0) {
        error_code = uv_listen((uv_stream_t *)&listener, BACKLOG, on_connection);
    }
    if (error_code != 0) {
        warn_uv("bind", where, error_code);
        return 1;
    }
    uv_os_fd_t descriptor;
    uv_fileno((uv_handle_t *)&listener, &descriptor);
    lab_announce_listening(descriptor); /* the lab's "listening on ADDRESS:PORT" line */
    return uv_run(loop, UV_RUN_DEFAULT);
}
