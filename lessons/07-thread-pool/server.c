/*
 * Lesson 07 - thread pool: WORKERS threads, started once, serve the clients that the
 * acceptor (main) puts into a bounded queue. Lesson 06 gave every client a thread, so a
 * flood of clients was a flood of threads. Here main() starts the workers, then only accepts:
 *   - each accepted client goes into a queue of QUEUE_SIZE places, under the queue's mutex;
 *   - a worker sleeps on a condition variable until the queue holds a client, takes the
 *     oldest, serves it with lesson 03's loop (lab_serve_echo_client), closes it, and comes
 *     back for the next: the threads live as long as the server;
 *   - a full queue: the newcomer is answered "error: server busy" and closed (after reading
 *     away what it sent: see turn_away), and the server goes on, as lesson 05's does;
 *   - the price: a worker stays with its client until the client leaves, so WORKERS silent
 *     clients stall everybody behind them. Lesson 08 (select) has no such limit.
 * New here: the condition variable (pthread_cond_*, or CONDITION_VARIABLE on Windows),
 * written out below. Threads, the mutex and lab_accept() come from common/ (lessons 05, 06).
 *
 * Run:    build/lessons/07-thread-pool/server [PORT [BIND-ADDRESS [WORKERS]]]   (5050 127.0.0.1 4)
 * Before: 06-thread-per-client.    Next: 08-select.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#ifdef _WIN32
#define SHUT_WR SD_SEND /* shutdown()'s "no more sending", as Winsock spells it */
#endif

#define DEFAULT_WORKERS 4
#define WORKERS_LIMIT 1000 /* the most the command line accepts */
#define QUEUE_SIZE 16      /* accepted clients waiting for a worker; one more is turned away */
#define SERVER_BUSY_REPLY "error: server busy\n"

/* A condition variable: where threads sleep until told that the data a mutex guards changed. */
#ifdef _WIN32
typedef CONDITION_VARIABLE condition;
#else
typedef pthread_cond_t condition;
#endif

/* Initialises a condition variable before first use; exits if there are no resources. */
static void condition_init(condition *c)
{
#ifdef _WIN32
    InitializeConditionVariable(c); /* cannot fail */
#else
    int error_code = pthread_cond_init(c, NULL); /* returns the error; errno is not set */
    if (error_code != 0) {
        lab_die("pthread_cond_init", NULL, error_code);
    }
#endif
}

/* Unlocks mutex and sleeps until woken, in one step; locks it again. Wakeups may be spurious. */
static void condition_wait(condition *c, lab_mutex *mutex)
{
#ifdef _WIN32
    SleepConditionVariableCS(c, mutex, INFINITE);
#else
    pthread_cond_wait(c, mutex);
#endif
}

/* Wakes one thread sleeping on c, if there is one; a signal with no sleeper is lost. */
static void condition_signal(condition *c)
{
#ifdef _WIN32
    WakeConditionVariable(c);
#else
    pthread_cond_signal(c);
#endif
}

struct client {
    lab_socket socket;
    char peer[LAB_ADDRESS_TEXT]; /* "ADDR:PORT", for messages */
};

/* Accepted clients no worker has taken yet, oldest first, in a ring; touch only under lock. */
struct client_queue {
    lab_mutex lock;
    condition not_empty; /* signalled each time a client is put in */
    struct client waiting[QUEUE_SIZE];
    size_t first; /* where the oldest waiting client is */
    size_t count; /* how many are waiting */
    int workers;  /* how many workers have started: each takes the next number */
};

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS [WORKERS]]]\n"
           "Echo server with a thread pool: WORKERS threads (default %d, 1-%d) serve one\n"
           "client each; up to %d more clients wait in a queue, and a client beyond those is\n"
           "answered \"error: server busy\" and closed. Listens on BIND-ADDRESS:PORT (default\n"
           "%s:%s; port 0 picks a free port; BIND-ADDRESS may be a name, IPv4 or IPv6).\n",
           DEFAULT_WORKERS, WORKERS_LIMIT, QUEUE_SIZE, LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

/* Puts a client at the back of the queue and wakes a worker; returns 0, or -1 if it is full. */
static int queue_put(struct client_queue *queue, lab_socket accepted, const char *peer)
{
    lab_mutex_lock(&queue->lock);
    int has_room = queue->count < QUEUE_SIZE;
    if (has_room) {
        struct client *client = &queue->waiting[(queue->first + queue->count) % QUEUE_SIZE];
        client->socket = accepted;
        snprintf(client->peer, sizeof client->peer, "%s", peer);
        queue->count++;
        printf("client connected from %s\n", peer); /* under the lock: before "serves" */
        condition_signal(&queue->not_empty);        /* after the change, still under the lock */
    }
    lab_mutex_unlock(&queue->lock);
    return has_room ? 0 : -1;
}

/* Takes the oldest client from the queue, sleeping while the queue is empty. */
static struct client queue_take(struct client_queue *queue)
{
    lab_mutex_lock(&queue->lock);
    while (queue->count == 0) { /* "while", not "if": wakeups can be spurious or stale */
        condition_wait(&queue->not_empty, &queue->lock);
    }
    struct client client = queue->waiting[queue->first]; /* a copy: the place is reused */
    queue->first = (queue->first + 1) % QUEUE_SIZE;
    queue->count--;
    lab_mutex_unlock(&queue->lock);
    return client;
}

/* A worker's whole life: take a client, serve it until it leaves, close it, again. Nothing
 * here may end the process (no lab_die, no exit): that would end every other client too. */
static void worker_thread(void *argument)
{
    struct client_queue *queue = argument;
    lab_mutex_lock(&queue->lock);
    int number = ++queue->workers; /* 1, 2, ...: a name for this worker's messages */
    lab_mutex_unlock(&queue->lock);
    for (;;) {
        struct client client = queue_take(queue);
        printf("worker %d serves client %s\n", number, client.peer);
        lab_serve_echo_client(client.socket, client.peer); /* until it leaves, however long */
        lab_close(client.socket);
        printf("client %s disconnected\n", client.peer);
    }
}

/* Answers a newcomer "server busy" and closes it. Not with close() alone: a socket closed with
 * unread input (a line it sent) sends a reset, which may destroy the answer before it is read. */
static void turn_away(lab_socket newcomer, const char *peer)
{
    if (send(newcomer, SERVER_BUSY_REPLY, (int)strlen(SERVER_BUSY_REPLY), 0) < 0) {
        lab_warn("send", peer, lab_last_error());
    }
    shutdown(newcomer, SHUT_WR); /* our end of file, after the answer */
    char unread[1024];           /* what it sent: read away, at most 16 KiB, without waiting */
    int reads = lab_set_nonblocking(newcomer) == 0 ? 16 : 0; /* none if recv() could wait */
    while (reads-- > 0 && recv(newcomer, unread, (int)sizeof unread, 0) > 0) {
    } /* until "would block", end of file or an error */
    lab_close(newcomer);
    printf("client %s turned away: server busy\n", peer);
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
    long workers = DEFAULT_WORKERS;
    lab_server_arguments(argc, argv, 1, &port, &host); /* lesson 03's checks, in common/ */
    if (argc > 3 && (lab_parse_count(argv[3], WORKERS_LIMIT, &workers) != 0 || workers < 1)) {
        lab_usage_error("invalid number of workers (expected 1-1000)", argv[3]);
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* lesson 03's policy: a send() to a departed client fails */
#endif
    static struct client_queue queue; /* static: zeroed, and alive as long as the workers */
    lab_mutex_init(&queue.lock);
    condition_init(&queue.not_empty);
    lab_socket listener = lab_listen(host, port); /* lesson 03's getaddrinfo loop */
    for (long i = 0; i < workers; i++) {          /* every thread exists before "listening on" */
        if (lab_thread_start(worker_thread, &queue) != 0) {
            /* Nobody accepted yet: better to stop now than to serve fewer than promised. */
            fprintf(stderr, "server: cannot start worker %ld of %ld\n", i + 1, workers);
            return 1;
        }
    }
    lab_announce_listening(listener);

    for (;;) {
        char peer[LAB_ADDRESS_TEXT];
        lab_socket accepted = lab_accept(listener, peer, sizeof peer);
        /* A failed lab_accept() has warned (and paused, if out of descriptors): try again. */
        if (lab_socket_ok(accepted) && queue_put(&queue, accepted, peer) != 0) {
            turn_away(accepted, peer);
        }
    }
}
