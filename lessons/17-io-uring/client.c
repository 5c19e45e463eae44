/*
 * Lesson 17 - completion I/O with io_uring: the echo client, lesson 03's by design.
 *
 * io_uring changes how the server waits and who makes its recv() and send() calls, not what
 * a client sees: every answer comes as it did from every echo server of the lab. So this is
 * lesson 03's client (lab_connect, lab_echo_stdin), and any client of the lab works with this
 * server, as do nc and telnet.
 *
 * Run:    build/lessons/17-io-uring/client [HOST [PORT]]   (default 127.0.0.1 5050)
 * Before: 16-dead-peers (same client as 11-epoll).    Next: none, the last lesson.
 */
#include "lab.h"

int main(int argc, char **argv)
{
    return lab_echo_client_main(argc, argv); /* lesson 03's client, from common/echo.c */
}
