/*
 * room_commands.c - a libFuzzer target for lesson 12's chat room: what one client types,
 * carried out by the room's own code (lessons/12-chat-room/server.c, included whole, its
 * main() renamed), in a room of three that never touches a socket.
 *
 * Properties checked after every line: no line queued for a client holds a "\n" but its last
 * byte (a client cannot smuggle a line of its own making into another's stream, e.g. a fake
 * "* ... joined"); each client's queued_bytes is what its queue holds, and at most the
 * room's limit unless it was dropped; every name is 1-16 of A-Z a-z 0-9 _ - and no two
 * clients share one. Any difference aborts; leaks show at the end of each input.
 *
 * Build and run: cmake --preset fuzz && cmake --build --preset fuzz
 *                python3 tests/fuzz/run.py --build-dir build-fuzz --seconds 60
 */
#define main room_main
int room_main(int argc, char **argv);
#include "../../lessons/12-chat-room/server.c"
#undef main

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "room: %s\n", what);
    abort();
}

/* Adds a client as lab_poll_loop() would: accepted(), then linked in front of the room. */
static struct client *join(void)
{
    struct client *client = (struct client *)accepted("127.0.0.1:1");
    if (client == NULL) {
        fail("no memory for a client");
    }
    client->connection.socket = LAB_INVALID_SOCKET; /* never used: nothing is sent */
    client->connection.next = room.first;
    room.first = &client->connection;
    room.count++;
    return client;
}

static void check_room(void)
{
    for (struct lab_connection *each = room.first; each != NULL; each = each->next) {
        const struct client *client = (const struct client *)each;
        size_t length = strlen(client->name), held = 0;
        if (name_problem(client, client->name, length) != NULL) {
            fail("a client's name is invalid or shared");
        }
        for (const struct queued *node = client->first; node != NULL; node = node->next) {
            const struct message *message = node->message;
            const char *newline = memchr(message->text, '\n', message->length);
            if (newline != message->text + message->length - 1) {
                fail("a queued line holds a \"\\n\" before its end");
            }
            held += message->length;
        }
        if (held - client->first_sent != client->queued_bytes) {
            fail("queued_bytes is not what the queue holds");
        }
        if (!client->gone && client->queued_bytes > queue_limit) {
            fail("a client kept past the queue limit");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        quiet = freopen("/dev/null", "w", stdout) != NULL; /* the room's own log lines */
    }
    queue_limit = 4096; /* small, so that a few lines reach it */
    struct client *listener = join();
    struct client *speaker = join();
    join();
    size_t fed = 0;
    while (fed < size && !speaker->leaving && !speaker->gone) {
        size_t count = sizeof speaker->input.bytes - speaker->input.used;
        count = count < size - fed ? count : size - fed;
        memcpy(speaker->input.bytes + speaker->input.used, data + fed, count);
        speaker->input.used += count;
        fed += count;
        char line[LAB_LINE_MAX + 1];
        size_t length;
        enum lab_line_status status;
        while (!speaker->leaving && !speaker->gone &&
               (status = lab_line_take(&speaker->input, line, &length)) != LAB_LINE_NEED_MORE) {
            if (status == LAB_LINE_READY && length > 0) { /* as receive() does */
                handle_line(speaker, line, length);
            }
            check_room();
        }
    }
    (void)listener;
    struct lab_connection *each = room.first;
    room.first = NULL; /* empty the room first: removed() then tells nobody */
    room.count = 0;
    while (each != NULL) {
        struct lab_connection *next = each->next;
        removed(each);
        each = next;
    }
    return 0;
}
