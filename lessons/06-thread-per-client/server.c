/*
 * Lesson 06 - thread per client: every accepted client gets a thread of its own.
 *
 * Shows the one change that lets lesson 03's iterative server serve clients at the same
 * time: the accept loop hands each client to a new thread and goes straight back to
 * accept(). The thread runs lesson 03's serve_client(), now lab_serve_echo_client(). New:
 *   - starting a thread: pthread_create() and pthread_detach(), or _beginthreadex();
 *   - passing the socket safely: each thread gets a heap block of its own, and frees it;
 *   - shared state under a lock: client_count changes in the accept loop and in every
 *     thread, so only while holding client_count_lock (pthread mutex, CRITICAL_SECTION);
 *   - a thread that cannot start costs one client, never the server;
 *   - out of descriptors, the loop pauses and tries again (lab_accept(), lesson 05) instead
 *     of ending as lesson 03's does: the threads give descriptors back as clients leave.
 *
 * Run:    build/lessons/06-thread-per-client/server [PORT [BIND-ADDRESS]]   (5050 127.0.0.1)
 * Before: 05-nonblocking-many (diff against 03-iterative-server to see this lesson's idea).
 * Next:   07-thread-pool.
 */
#include "lab.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _WIN32
#include <process.h> /* _beginthreadex */
#else
#include <pthread.h>
#endif

/* Everything one client's thread needs. The accept loop fills a fresh one per client and
 * gives it away: from then on only that thread reads it, and that thread frees it. */
struct client {
    lab_socket socket;
    char peer[LAB_ADDRESS_TEXT]; /* "ADDR:PORT", for messages */
};

/* A lock: a pthread mutex on POSIX, a CRITICAL_SECTION on Windows. */
#ifdef _WIN32
typedef CRITICAL_SECTION mutex_type;
#else
typedef pthread_mutex_t mutex_type;
#endif

/* Shared by the accept loop and every client thread: read or change it only while holding
 * client_count_lock. Without the lock two "++"s at once can lose one (a data race). */
static mutex_type client_count_lock;
static int client_count;

static void print_usage(void)
{
    printf("usage: server [PORT [BIND-ADDRESS]]\n"
           "Echo server: serves every client at once, each on its own thread, on\n"
           "BIND-ADDRESS:PORT (default %s:%s; port 0 picks a free port). BIND-ADDRESS may\n"
           "be a name (localhost), an IPv4 or an IPv6 address (::1, or :: for every interface).\n",
           LAB_DEFAULT_ADDRESS, LAB_DEFAULT_PORT);
}

/* The three things done with a lock: set it up once, before any thread exists; take it,
 * waiting while another thread holds it; give it back. */
static void mutex_init(mutex_type *mutex)
{
#ifdef _WIN32
    InitializeCriticalSection(mutex);
#else
    pthread_mutex_init(mutex, NULL);
#endif
}

static void mutex_lock(mutex_type *mutex)
{
#ifdef _WIN32
    EnterCriticalSection(mutex);
#else
    pthread_mutex_lock(mutex);
#endif
}

static void mutex_unlock(mutex_type *mutex)
{
#ifdef _WIN32
    LeaveCriticalSection(mutex);
#else
    pthread_mutex_unlock(mutex);
#endif
}

/* Counts a client in and says so. The line is printed under the lock too, so the counts
 * on stdout appear in the order they happened; each line is one printf() call, which
 * POSIX stdio (and the Windows C runtime) lock as a whole: lines never mix. */
static void client_arrived(const char *peer)
{
    mutex_lock(&client_count_lock);
    client_count++;
    printf("client connected from %s (%d connected)\n", peer, client_count);
    mutex_unlock(&client_count_lock);
}

/* Counts a client out and says so; called once for every client_arrived(). */
static void client_left(const char *peer)
{
    mutex_lock(&client_count_lock);
    client_count--;
    printf("client %s disconnected (%d connected)\n", peer, client_count);
    mutex_unlock(&client_count_lock);
}

/* The body of a client's thread, in the shape each system asks for: one pointer in, a
 * result nobody reads. It owns the client, so it closes and frees it. Nothing here may
 * end the process (no lab_die, no exit): that would end every other client too. */
#ifdef _WIN32
static unsigned __stdcall client_thread(void *argument)
#else
static void *client_thread(void *argument)
#endif
{
    struct client *client = argument;
    lab_serve_echo_client(client->socket, client->peer); /* lesson 03's serve_client() */
    lab_close(client->socket);
    client_left(client->peer);
    free(client);
    return 0;
}

/* Starts client_thread(client) on a new thread, detached: nobody will wait for it, so what
 * the system keeps for it goes back as soon as it returns. Returns 0, or -1 if no thread
 * is to be had (too many threads, no address space left for another stack). */
static int start_thread(struct client *client)
{
#ifdef _WIN32
    /* _beginthreadex, not the Win32 CreateThread: the thread uses the C runtime (printf,
     * malloc, errno), and _beginthreadex sets up the runtime's per-thread data for it. */
    uintptr_t handle = _beginthreadex(NULL, 0, client_thread, client, 0, NULL);
    if (handle == 0) {
        return -1;
    }
    CloseHandle((HANDLE)handle); /* the thread runs on; only our handle to it is gone */
#else
    pthread_t thread;
    if (pthread_create(&thread, NULL, client_thread, client) != 0) {
        return -1; /* it returns an error number (EAGAIN) and leaves errno alone */
    }
    pthread_detach(thread);
#endif
    return 0;
}

/* Hands an accepted client to a new thread. Without memory or a thread for it, only this
 * client is turned away - closed at once, with a warning - and the accept loop goes on. */
static void start_client_thread(lab_socket accepted, const char *peer)
{
    client_arrived(peer);
    struct client *client = malloc(sizeof *client);
    if (client != NULL) {
        client->socket = accepted;
        snprintf(client->peer, sizeof client->peer, "%s", peer);
        if (start_thread(client) == 0) {
            return; /* the block belongs to the thread now: not one more look at it here */
        }
        free(client); /* the thread never ran, so the block is still ours */
    }
    fprintf(stderr, "server: cannot start a thread for client %s: closing it\n", peer);
    lab_close(accepted);
    client_left(peer);
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
    lab_server_arguments(argc, argv, 0, &port, &host); /* lesson 03's checks, in common/ */
#ifdef SIGPIPE
    /* The policy: a send() to a client that has closed raises SIGPIPE, whose default
     * action ends the whole server. Ignored, the send() fails with EPIPE and only that
     * client's loop ends. */
    signal(SIGPIPE, SIG_IGN);
#endif
    mutex_init(&client_count_lock);               /* before the first thread can exist */
    lab_socket listener = lab_listen(host, port); /* lesson 03's getaddrinfo, bind, listen */
    lab_announce_listening(listener);

    for (;;) {
        /* lab_accept(): accept() and the peer's address text. A failure only warns, and
         * out of descriptors (EMFILE) also pauses, so that this loop never spins. */
        char peer[LAB_ADDRESS_TEXT];
        lab_socket client = lab_accept(listener, peer, sizeof peer);
        if (!lab_socket_ok(client)) {
            continue;
        }
        /* The thread gets a copy of the socket's value in a block of its own, never
         * &client: this variable is overwritten by the next accept(), maybe before the
         * new thread has read it. */
        start_client_thread(client, peer);
    }
}
