/*
 * Lesson 05 - many clients, one thread: the echo client, the same as lesson 04's by design.
 *
 * This lesson changes only the server. Start several of these clients in several terminals
 * at once: each is answered while the others stay connected, where lesson 04 made them
 * wait their turn. Lesson 09 makes the client non-blocking too.
 *
 * Run:    build/lessons/05-nonblocking-many/client [HOST [PORT]]   (default 127.0.0.1 5050)
 * Before: 04-nonblocking-server.    Next: 06-thread-per-client.
 */
#include "lab.h"

int main(int argc, char **argv)
{
    return lab_echo_client_main(argc, argv); /* lesson 03's client, from common/echo.c */
}
