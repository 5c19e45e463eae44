/*
 * Lesson 04 - the non-blocking server: the echo client, the same as lesson 03's by design.
 *
 * This lesson changes only the server. The client stays a plain blocking program, so that
 * any difference you see comes from the server: the same input gives the same answers,
 * each a little later (up to the server's POLL-MS) when the server was idle.
 * Lesson 03 taught its getaddrinfo loop; here it is lab_connect() from common/.
 *
 * Run:    build/lessons/04-nonblocking-server/client [HOST [PORT]]   (default 127.0.0.1 5050)
 * Before: 03-iterative-server.    Next: 05-nonblocking-many.
 */
#include "lab.h"

int main(int argc, char **argv)
{
    return lab_echo_client_main(argc, argv); /* lesson 03's client, from common/echo.c */
}
