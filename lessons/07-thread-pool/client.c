/*
 * Lesson 07 - thread pool: the echo client, the same as lesson 06's by design.
 *
 * The pool is the server's business; this lesson changes only the server. Start more of
 * these clients than the server has workers and leave them connected without typing: the
 * next client's lines get no answer until one of them leaves, because each worker stays
 * with its client until the client goes (lesson 06's server would answer at once).
 *
 * Run:    build/lessons/07-thread-pool/client [HOST [PORT]]   (default 127.0.0.1 5050)
 * Before: 06-thread-per-client (same client).    Next: 08-select.
 */
#include "lab.h"

int main(int argc, char **argv)
{
    return lab_echo_client_main(argc, argv); /* lesson 03's client, from common/echo.c */
}
