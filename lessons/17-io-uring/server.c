/*
 * Lesson 17 - completion I/O with io_uring (Linux only): "do this, and tell me when it is done".
 *
 * Lesson 11 asked "tell me when I can", then made the recv() and send() calls itself. Here the
 * server writes the work itself - accept on the listener, receive from each client, send these
 * answers - into a submission queue, and reads what is done from a completion queue; one
 * io_uring_enter() hands over every entry of a turn and waits. The accept and each client's
 * receive are multishot: armed once, they complete again and again, each receive with bytes in
 * a buffer the kernel took from a ring of buffers this server provides.
 *
 * Run:    build/lessons/17-io-uring/server [PORT [BIND-ADDRESS]]   (default 5050 127.0.0.1)
 * Before: 16-dead-peers (diff against 11-epoll).    Next: none, the last lesson.
 */
#include "lab.h"

#include <liburing.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_ENTRIES 1024 /* submission queue; the completion queue has 4 times as many */
#define BUFFER_COUNT 1024  /* receive buffers shared by every client (a power of 2) */
#define BUFFER_SIZE 2048
#define BUFFER_GROUP 0
#define PAUSE_AT LAB_OUTPUT_MAX /* answers not yet sent: stop receiving from that client */
#define ANSWER_BLOCK 4096       /* a line reader, or a block of answers */
#define SPARE_BLOCKS 4096       /* given-back blocks kept for the next requests (16 MB) */
#define FIRST_SPARES 1024       /* of which taken at start (4 MB) */

/* What a completion is about: in the low bits of its user_data, above them the client. */
enum operation { ACCEPT, ACCEPT_PAUSE, IGNORED, RECEIVE, SEND };
enum state {
    RECEIVING = 1,   /* a multishot receive is armed */
    CANCELLING = 2,  /* ... and its cancel submitted: the client is paused */
    SENDING = 4,     /* a send is in flight */
    INPUT_ENDED = 8, /* end of file received */
    GOING = 16,      /* to be closed and freed once the kernel holds none of its work */
    CLOSING = 32,    /* ... and every operation on its socket cancelled */
    CHANGED = 64     /* in the list of clients to look at after this turn's completions */
};

struct answers { /* one block of answers to send, bytes[sent..used); a client's queue up */
    struct answers *next;
    size_t used, sent;
    char bytes[ANSWER_BLOCK - sizeof(struct answers *) - 2 * sizeof(size_t)];
};

struct client {
    int socket;
    unsigned state;                /* enum state bits */
    struct lab_line_reader *input; /* part of a line received; NULL while there is none */
    struct answers *answers;       /* the first is being sent while SENDING: the kernel may */
    struct answers *last_answers;  /* read it until the send completes; NULL while none wait */
    struct client *next_changed;   /* in the list of clients this turn's completions touched */
    char peer[LAB_ADDRESS_TEXT];
};

static struct io_uring ring;
static struct io_uring_buf_ring *buffer_ring; /* addresses of free buffers, read by the kernel */
static char *buffer_memory;                   /* BUFFER_COUNT buffers of BUFFER_SIZE bytes */
static int buffers_returned;                  /* given back this turn, made visible at its end */
static struct client *changed;                /* clients to look at once the turn's are read */
static void *spare_blocks[SPARE_BLOCKS];
static int spares;

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS]]\n"
           "Echo server on io_uring: one thread submits accepts, receives and sends and\n"
           "reads their completions, on BIND-ADDRESS:PORT (default %s:%s; port 0 picks a\n"
           "free port). Linux only; exits with a message where the kernel refuses io_uring.\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

/* Each request takes a block or two and gives them back. Kept here for the next ones, they
 * spare the allocator, which otherwise gave the top of its heap back to the kernel and took
 * it again - a brk() call for most requests, measured (README.md) - and a burst of clients
 * that do not read leaves no scattered heap behind: the blocks wait for the next burst. */
static void *take_block(void)
{
    return spares > 0 ? spare_blocks[--spares] : malloc(ANSWER_BLOCK);
}

static void give_block(void *block)
{
    if (block != NULL && spares < SPARE_BLOCKS) {
        spare_blocks[spares++] = block;
    } else {
        free(block);
    }
}

/* A free submission entry for operation on client (NULL: the listener), tagged so that its
 * completion finds both. A full queue is handed to the kernel first. */
static struct io_uring_sqe *submission(enum operation operation, struct client *client)
{
    struct io_uring_sqe *entry = io_uring_get_sqe(&ring);
    if (entry == NULL) {
        io_uring_submit(&ring);
        if ((entry = io_uring_get_sqe(&ring)) == NULL) {
            lab_die("io_uring_get_sqe", NULL, EBUSY);
        }
    }
    io_uring_sqe_set_data64(entry, (uintptr_t)client | operation);
    return entry;
}

/* Multishot accept: one entry, a completion for every connection until it ends. */
static void accept_clients(lab_socket listener)
{
    io_uring_prep_multishot_accept(submission(ACCEPT, NULL), listener, NULL, NULL, 0);
}

/* Multishot receive: a completion for every arrival, into a buffer of the ring. */
static void receive(struct client *client)
{
    struct io_uring_sqe *entry = submission(RECEIVE, client);
    io_uring_prep_recv_multishot(entry, client->socket, NULL, 0, 0);
    entry->flags |= IOSQE_BUFFER_SELECT; /* no buffer of its own: the kernel picks one */
    entry->buf_group = BUFFER_GROUP;
    client->state |= RECEIVING;
}

/* Hands the first block of answers over; the kernel reads it when the socket has room, so
 * until the completion it is not touched (new answers go to a block behind it). */
static void send_answers(struct client *client)
{
    struct answers *first = client->answers;
    io_uring_prep_send(submission(SEND, client), client->socket, first->bytes + first->sent,
                       first->used - first->sent, MSG_NOSIGNAL);
    client->state |= SENDING;
}

/* Answer bytes not yet taken by the socket. */
static size_t unsent(const struct client *client)
{
    size_t total = 0;
    for (const struct answers *block = client->answers; block != NULL; block = block->next) {
        total += block->used - block->sent;
    }
    return total;
}

/* Appends an answer to the last block, or to a new one (blocks of one size come and go
 * without scattering the heap); returns 0, or -1 if there is no memory. */
static int add_answer(struct client *client, const char *bytes, size_t size)
{
    struct answers *last = client->last_answers;
    if (last == NULL || ((client->state & SENDING) && last == client->answers) ||
        sizeof last->bytes - last->used < size) {
        struct answers *block = take_block();
        if (block == NULL) {
            return -1;
        }
        block->next = NULL;
        block->used = block->sent = 0;
        *(last == NULL ? &client->answers : &last->next) = block;
        client->last_answers = last = block;
    }
    memcpy(last->bytes + last->used, bytes, size);
    last->used += size;
    return 0;
}

/* Feeds received bytes through lesson 02's line reader and answers every whole line, as
 * the lab's other echo servers do; returns 0, or -1 if there is no memory. */
static int take_input(struct client *client, const char *bytes, size_t size)
{
    char line[LAB_LINE_MAX + 2];
    size_t length;
    while (size > 0) {
        if (client->input == NULL) { /* held only while a line is unfinished */
            if ((client->input = take_block()) == NULL) {
                return -1;
            }
            lab_line_reader_init(client->input);
        }
        /* Up to the next "\n" only: taking a line then moves no bytes after it (a reader
         * filled with 1,000 short lines would move the rest forward 1,000 times). */
        const char *newline = memchr(bytes, '\n', size);
        size_t part = sizeof client->input->bytes - client->input->used;
        if (newline != NULL && (size_t)(newline - bytes) < part) {
            part = (size_t)(newline - bytes) + 1;
        }
        part = size < part ? size : part;
        memcpy(client->input->bytes + client->input->used, bytes, part);
        client->input->used += part;
        bytes += part;
        size -= part;
        enum lab_line_status status;
        while ((status = lab_line_take(client->input, line, &length)) != LAB_LINE_NEED_MORE) {
            int added =
                status == LAB_LINE_READY
                    ? (line[length] = '\n', add_answer(client, line, length + 1))
                    : add_answer(client, LAB_LINE_TOO_LONG_REPLY, strlen(LAB_LINE_TOO_LONG_REPLY));
            if (added != 0) {
                return -1;
            }
        }
        if (client->input->used == 0 && !client->input->discarding) {
            give_block(client->input);
            client->input = NULL;
        }
    }
    return 0;
}

/* A receive completed: bytes, end of file, or an error; IORING_CQE_F_MORE says whether the
 * multishot receive goes on. Its buffer goes back to the ring at once, for anyone. */
static void received(struct client *client, const struct io_uring_cqe *done)
{
    if (!(done->flags & IORING_CQE_F_MORE)) {
        client->state &= ~(unsigned)(RECEIVING | CANCELLING); /* next_step() may re-arm it */
    }
    if (done->res > 0) {
        unsigned id = done->flags >> IORING_CQE_BUFFER_SHIFT;
        char *bytes = buffer_memory + (size_t)id * BUFFER_SIZE;
        if (!(client->state & GOING) && take_input(client, bytes, (size_t)done->res) != 0) {
            fprintf(stderr, "%s: no memory for client %s: closing it\n", lab_program(),
                    client->peer);
            client->state |= GOING;
        }
        io_uring_buf_ring_add(buffer_ring, bytes, BUFFER_SIZE, (unsigned short)id,
                              io_uring_buf_ring_mask(BUFFER_COUNT), buffers_returned++);
    } else if (done->res == 0) {
        client->state |= INPUT_ENDED; /* maybe only half-closed: it may still read answers */
    } else if (done->res != -ENOBUFS && done->res != -ECANCELED && !(client->state & GOING)) {
        lab_warn("recv", client->peer, -done->res); /* e.g. reset by the client */
        client->state |= GOING;
    } /* -ENOBUFS: the ring was empty, the multishot ended; -ECANCELED: we paused it */
}

/* A send completed: how many bytes the socket took, or an error. */
static void sent(struct client *client, int result)
{
    client->state &= ~(unsigned)SENDING;
    if (result < 0) {
        if (!(client->state & GOING)) {
            lab_warn("send", client->peer, -result); /* EPIPE: MSG_NOSIGNAL, no SIGPIPE */
        }
        client->state |= GOING;
    } else if ((client->answers->sent += (size_t)result) == client->answers->used) {
        struct answers *done = client->answers;
        client->answers = done->next;
        client->last_answers = client->answers == NULL ? NULL : client->last_answers;
        give_block(done);
    }
}

/* After a turn's completions: what the client needs next. Sends what waits; receives while
 * fewer than PAUSE_AT bytes of answers wait, else cancels its receive (a client that does not
 * read must not grow our memory); finishes its answers after end of file, then goes. A client
 * that goes is freed once the kernel holds none of its operations. */
static void next_step(struct client *client)
{
    size_t waiting = unsent(client);
    unsigned *state = &client->state;
    if (!(*state & GOING)) {
        if (!(*state & SENDING) && waiting > 0) {
            send_answers(client);
        }
        if (!(*state & (RECEIVING | INPUT_ENDED)) && waiting < PAUSE_AT) {
            receive(client);
        } else if ((*state & RECEIVING) && !(*state & CANCELLING) && waiting >= PAUSE_AT) {
            io_uring_prep_cancel64(submission(IGNORED, NULL), (uintptr_t)client | RECEIVE, 0);
            *state |= CANCELLING; /* its last completion says -ECANCELED */
        }
        if ((*state & INPUT_ENDED) && waiting == 0) {
            *state |= GOING; /* every line answered; a half line without "\n" is dropped */
        }
    }
    if ((*state & GOING) && (*state & (RECEIVING | SENDING))) {
        if (!(*state & CLOSING)) { /* every operation on its socket, once */
            io_uring_prep_cancel_fd(submission(IGNORED, NULL), client->socket,
                                    IORING_ASYNC_CANCEL_ALL);
            *state |= CLOSING;
        }
    } else if (*state & GOING) {
        lab_close(client->socket);
        printf("client %s disconnected\n", client->peer);
        give_block(client->input);
        while (client->answers != NULL) {
            struct answers *block = client->answers;
            client->answers = block->next;
            give_block(block);
        }
        free(client);
    }
}

/* A client's completion was handled: look at it once at the end of the turn. */
static void mark_changed(struct client *client)
{
    if (!(client->state & CHANGED)) {
        client->state |= CHANGED;
        client->next_changed = changed;
        changed = client;
    }
}

/* A new connection from the multishot accept: its state, then its first receive. */
static void add_client(int socket)
{
    struct client *client = calloc(1, sizeof *client);
    struct sockaddr_storage address;
    socklen_t size = sizeof address;
    if (client == NULL || getpeername(socket, (struct sockaddr *)&address, &size) != 0) {
        lab_warn(client ? "getpeername" : "calloc", NULL, lab_last_error());
        lab_close(socket);
        free(client);
        return;
    }
    client->socket = socket;
    lab_address_text((struct sockaddr *)&address, client->peer, sizeof client->peer);
    printf("client connected from %s\n", client->peer);
    mark_changed(client); /* next_step() arms its receive */
}

/* An accept completed. Out of descriptors, the multishot ends (the connection stays queued):
 * accept again after a pause that is itself an operation - a timeout - so the loop serves
 * its clients meanwhile instead of sleeping. */
static void accepted(lab_socket listener, const struct io_uring_cqe *done)
{
    static struct __kernel_timespec pause = {0, LAB_ACCEPT_PAUSE_MS * 1000000L};
    if (done->res >= 0) {
        add_client(done->res);
    } else if (done->res == -EINVAL) {
        lab_die("accept", "(multishot accept needs Linux 5.19)", -done->res);
    } else {
        lab_warn("accept", NULL, -done->res);
    }
    if (done->flags & IORING_CQE_F_MORE) {
        return;
    }
    if (done->res < 0 && lab_error_is_out_of_descriptors(-done->res)) {
        io_uring_prep_timeout(submission(ACCEPT_PAUSE, NULL), &pause, 0, 0);
    } else {
        accept_clients(listener);
    }
}

/* The ring of provided buffers, set up by hand: liburing 2.3 has no io_uring_setup_buf_ring().
 * The kernel takes a buffer from it for each receive that completes with bytes. */
static void provide_buffers(void)
{
    size_t ring_size = BUFFER_COUNT * sizeof(struct io_uring_buf);
    void *ring_memory;
    buffer_memory = malloc((size_t)BUFFER_COUNT * BUFFER_SIZE);
    if (buffer_memory == NULL ||
        posix_memalign(&ring_memory, (size_t)sysconf(_SC_PAGESIZE), ring_size) != 0) {
        lab_die("malloc", "(receive buffers)", ENOMEM);
    }
    /* Touched now, so that their memory is the server's from the start, not per client. */
    memset(buffer_memory, 0, (size_t)BUFFER_COUNT * BUFFER_SIZE);
    buffer_ring = ring_memory;
    io_uring_buf_ring_init(buffer_ring);
    struct io_uring_buf_reg registration = {
        .ring_addr = (uintptr_t)ring_memory, .ring_entries = BUFFER_COUNT, .bgid = BUFFER_GROUP};
    int result = io_uring_register_buf_ring(&ring, &registration, 0);
    if (result != 0) {
        lab_die("io_uring_register_buf_ring", NULL, -result);
    }
    for (int id = 0; id < BUFFER_COUNT; id++) {
        io_uring_buf_ring_add(buffer_ring, buffer_memory + (size_t)id * BUFFER_SIZE, BUFFER_SIZE,
                              (unsigned short)id, io_uring_buf_ring_mask(BUFFER_COUNT), id);
    }
    io_uring_buf_ring_advance(buffer_ring, BUFFER_COUNT);
    for (int block = 0; block < FIRST_SPARES; block++) { /* some spares too, for the same reason */
        void *spare = malloc(ANSWER_BLOCK);
        if (spare == NULL) {
            lab_die("malloc", "(spare blocks)", ENOMEM);
        }
        memset(spare, 0, ANSWER_BLOCK);
        give_block(spare);
    }
}

/* Makes the ring: its completions are run only inside this thread's io_uring_enter()
 * (DEFER_TASKRUN, which needs SINGLE_ISSUER; COOP_TASKRUN: no interrupt to run them).
 * Where the kernel refuses io_uring, says so in one line and exits. */
static void make_ring(void)
{
    struct io_uring_params params = {.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN |
                                              IORING_SETUP_SINGLE_ISSUER |
                                              IORING_SETUP_DEFER_TASKRUN,
                                     .cq_entries = 4 * QUEUE_ENTRIES};
    int result = io_uring_queue_init_params(QUEUE_ENTRIES, &ring, &params);
    if (result == -EPERM || result == -ENOSYS) {
        char reason[128], disabled[8] = "?";
        FILE *sysctl = fopen("/proc/sys/kernel/io_uring_disabled", "r");
        if (sysctl != NULL) {
            if (fscanf(sysctl, "%7s", disabled) != 1) {
                disabled[0] = '?';
            }
            fclose(sysctl);
        }
        fprintf(stderr,
                "%s: io_uring_setup: %s (io_uring is refused here; "
                "kernel.io_uring_disabled = %s)\n",
                lab_program(), lab_error_text(-result, reason, sizeof reason), disabled);
        exit(EXIT_FAILURE);
    }
    if (result < 0) {
        lab_die("io_uring_setup", NULL, -result);
    }
    provide_buffers();
}

/* Handles one completion; a client it concerns is looked at again at the end of the turn. */
static void complete(lab_socket listener, const struct io_uring_cqe *done)
{
    uint64_t data = io_uring_cqe_get_data64(done);
    struct client *client = (struct client *)(uintptr_t)(data & ~(uint64_t)7);
    switch ((enum operation)(data & 7)) {
    case ACCEPT:
        accepted(listener, done);
        return;
    case ACCEPT_PAUSE:
        accept_clients(listener); /* the pause is over (-ETIME) */
        return;
    case IGNORED:
        return; /* a cancel that found nothing left to cancel */
    case RECEIVE:
        received(client, done);
        break;
    case SEND:
        sent(client, done->res);
        break;
    }
    mark_changed(client);
}

static _Noreturn void serve_forever(lab_socket listener)
{
    accept_clients(listener);
    for (;;) {
        /* One system call: every entry prepared last turn goes in, and it sleeps until at
         * least one completion is there. */
        int result = io_uring_submit_and_wait(&ring, 1);
        if (result < 0 && result != -EINTR) {
            lab_die("io_uring_enter", NULL, -result);
        }
        unsigned head, seen = 0;
        struct io_uring_cqe *done;
        io_uring_for_each_cqe(&ring, head, done)
        {
            complete(listener, done);
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
        io_uring_buf_ring_advance(buffer_ring, buffers_returned); /* the kernel may use them */
        buffers_returned = 0;
        while (changed != NULL) { /* after every completion: none names a freed client */
            struct client *client = changed;
            changed = client->next_changed;
            client->state &= ~(unsigned)CHANGED;
            next_step(client);
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
    lab_server_arguments(argc, argv, 0, &port, &host);
    signal(SIGPIPE, SIG_IGN); /* lesson 03's policy; sends here also say MSG_NOSIGNAL */
    lab_socket listener = lab_listen(host, port);
    make_ring(); /* after listen(): a busy port is reported as such, even without io_uring */
    lab_announce_listening(listener);
    serve_forever(listener);
}
