/*
 * Lesson 06 - thread per client: the echo client, the same as lesson 03's by design.
 *
 * Threads are the server's business; a client cannot tell a threaded server from an
 * iterative one except that it is served at once. So this is lesson 03's client, with
 * its getaddrinfo loop now lab_connect() from common/ and its echo loop lab_echo_stdin().
 * Start several of them in several terminals: every one is answered while the others
 * are still connected (lesson 03's server would answer only the first).
 *
 * Run:    build/lessons/06-thread-per-client/client [HOST [PORT]]   (default 127.0.0.1 5050)
 * Before: 05-nonblocking-many (same client as 03-iterative-server).    Next: 07-thread-pool.
 */
#include "lab.h"

int main(int argc, char **argv)
{
    return lab_echo_client_main(argc, argv); /* lesson 03's client, from common/echo.c */
}
