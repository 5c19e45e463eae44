/*
 * Lesson 11 - epoll: the echo client, lesson 03's by design.
 *
 * epoll changes how the server waits, not what a client sees: answers come as they
 * did from every echo server of the lab, only now one thread serves all clients at once
 * without polling. So this is lesson 03's client (lab_connect, lab_echo_stdin); start
 * several in several terminals, or leave one silent, and the others are still answered.
 * Lesson 09 makes the client itself wait with select().
 *
 * Run:    build/lessons/11-epoll/client [HOST [PORT]]   (default 127.0.0.1 5050)
 * Before: 10-poll (same client).    Next: 12-chat-room.
 */
#include "lab.h"

int main(int argc, char **argv)
{
    return lab_echo_client_main(argc, argv); /* lesson 03's client, from common/echo.c */
}
