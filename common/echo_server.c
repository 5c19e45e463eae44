/*
 * echo_server.c - serving one echo client, the way lessons 03 and 04 teach it, for the
 * lessons after them whose new idea is elsewhere (threads, a table of clients, ...).
 *   lab_serve_echo_client  blocking: lesson 03's serve_client()
 *   lab_echo_round         non-blocking: lesson 04's round of answer, receive, send, with
 *                          buffers allocated only while they hold bytes (lesson 08 on)
 */
#include "lab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest answer: a whole line and its "\n". */
#define ANSWER_MAX (LAB_LINE_MAX + 1)

void lab_serve_echo_client(lab_socket client, const char *peer)
{
    struct lab_line_reader reader;
    lab_line_reader_init(&reader);
    char line[LAB_LINE_MAX + 2];
    size_t length;
    for (;;) {
        enum lab_line_status status = lab_read_line(&reader, client, line, &length);
        int sent;
        if (status == LAB_LINE_READY) {
            line[length] = '\n';
            sent = lab_send_all(client, line, length + 1);
        } else if (status == LAB_LINE_TOO_LONG) {
            sent = lab_send_all(client, LAB_LINE_TOO_LONG_REPLY, strlen(LAB_LINE_TOO_LONG_REPLY));
        } else if (status == LAB_LINE_CLOSED) {
            return;
        } else {
            lab_warn("recv", peer, lab_last_error()); /* e.g. reset by the client */
            return;
        }
        if (sent != 0) {
            lab_warn("send", peer, lab_last_error()); /* EPIPE: SIGPIPE is ignored */
            return;
        }
    }
}

void lab_echo_client_init(struct lab_echo_client *client, lab_socket s, const char *peer)
{
    client->socket = s;
    client->input = NULL; /* allocated when the first bytes arrive */
    client->output = NULL;
    client->input_ended = 0;
    client->waiting_for = 0;
    snprintf(client->peer, sizeof client->peer, "%s", peer);
    client->previous = client->next = NULL;
}

void lab_echo_client_close(struct lab_echo_client *client)
{
    lab_close(client->socket);
    client->socket = LAB_INVALID_SOCKET;
    free(client->input);
    free(client->output);
    client->input = NULL;
    client->output = NULL;
}

/* Room left for answers; a client with no output buffer has all of it. */
static size_t output_room(const struct lab_echo_client *client)
{
    return client->output == NULL ? LAB_OUTPUT_MAX : LAB_OUTPUT_MAX - client->output->used;
}

/* Appends an answer that fits (the caller checked output_room); returns 0, or -1 if there
 * is no memory for the output buffer. */
static int append_answer(struct lab_echo_client *client, const char *answer, size_t length)
{
    if (client->output == NULL) {
        client->output = malloc(sizeof *client->output);
        if (client->output == NULL) {
            return -1;
        }
        client->output->used = 0;
    }
    return lab_output_append(client->output, answer, length);
}

/* Answers the whole lines already received while their answers fit in the output; sets
 * *needs_input when no whole line is left. Returns 1 if it answered any line, -1 if there
 * was no memory for the answer. */
static int answer_lines(struct lab_echo_client *client, int *needs_input)
{
    char line[LAB_LINE_MAX + 2];
    size_t length;
    int answered = 0;
    *needs_input = 1;
    /* Backpressure: a line is taken only when its longest answer fits. A client that sends
     * but does not read is then no longer read either: its lines wait in the kernel's
     * buffers, then in its own, and this server's memory stays bounded. */
    while (client->input != NULL && output_room(client) >= ANSWER_MAX) {
        enum lab_line_status status = lab_line_take(client->input, line, &length);
        int appended;
        if (status == LAB_LINE_READY) {
            line[length] = '\n';
            appended = append_answer(client, line, length + 1);
        } else if (status == LAB_LINE_TOO_LONG) {
            appended =
                append_answer(client, LAB_LINE_TOO_LONG_REPLY, strlen(LAB_LINE_TOO_LONG_REPLY));
        } else {
            return answered;
        }
        if (appended != 0) {
            return -1;
        }
        answered = 1;
    }
    *needs_input = client->input == NULL;
    return answered;
}

/* Receives what has arrived, if anything; returns LAB_ROUND_BUSY, LAB_ROUND_IDLE or, on an
 * error, LAB_ROUND_CLIENT_GONE. End of file is remembered in client->input_ended. */
static enum lab_round_result receive_input(struct lab_echo_client *client)
{
    if (client->input == NULL) {
        client->input = malloc(sizeof *client->input);
        if (client->input == NULL) {
            fprintf(stderr, "%s: no memory for client %s: closing it\n", lab_program(),
                    client->peer);
            return LAB_ROUND_CLIENT_GONE;
        }
        lab_line_reader_init(client->input);
    }
    lab_io_size received = lab_line_fill(client->input, client->socket);
    if (received > 0) {
        return LAB_ROUND_BUSY;
    }
    if (received == 0) {
        client->input_ended = 1; /* maybe only half-closed: it may still read our answers */
        return LAB_ROUND_BUSY;
    }
    int error_code = lab_last_error();
    if (lab_error_is_would_block(error_code)) {
        return LAB_ROUND_IDLE; /* nothing has arrived: normal, not an error */
    }
    lab_warn("recv", client->peer, error_code); /* e.g. reset by the client */
    return LAB_ROUND_CLIENT_GONE;
}

/* Frees the buffers that hold nothing now, so that a quiet client costs only its struct. */
static void release_empty_buffers(struct lab_echo_client *client)
{
    if (client->input != NULL && client->input->used == 0 && !client->input->discarding) {
        free(client->input);
        client->input = NULL;
    }
    if (client->output != NULL && client->output->used == 0) {
        free(client->output);
        client->output = NULL;
    }
}

/* Sends what the socket takes now; returns 1 if it took anything, 0 if not, -1 on error. */
static int send_answers(struct lab_echo_client *client)
{
    if (client->output == NULL) {
        return 0;
    }
    size_t pending = client->output->used;
    if (lab_output_flush(client->output, client->socket) != 0) {
        lab_warn("send", client->peer, lab_last_error()); /* EPIPE: SIGPIPE is ignored */
        return -1;
    }
    return client->output->used < pending;
}

/* Sends what the socket takes, then answers the lines that waited for room, and again,
 * until the socket refuses more or no whole line is left. Stopping after one send would
 * strand those lines: with the answers sent the loop asks only to read, and a client that
 * has sent everything and waits for its answers never makes the socket readable again.
 * Returns 1 if anything was sent, 0 if not, -1 if the client must go (warned about). */
static int send_and_answer(struct lab_echo_client *client, int *needs_input)
{
    int sent_any = 0;
    for (;;) {
        int sent = send_answers(client);
        if (sent < 0) {
            return -1;
        }
        if (sent == 0) {
            return sent_any; /* nothing to send, or the socket is full: POLLOUT will say */
        }
        sent_any = 1;
        int answered = answer_lines(client, needs_input);
        if (answered < 0) {
            fprintf(stderr, "%s: no memory for client %s: closing it\n", lab_program(),
                    client->peer);
            return -1;
        }
        if (answered == 0) {
            return 1; /* no whole line left, or no room yet: the socket is full */
        }
    }
}

enum lab_round_result lab_echo_round(struct lab_echo_client *client)
{
    int needs_input;
    int busy = answer_lines(client, &needs_input); /* lines held back last round, if any */
    if (busy >= 0 && needs_input && !client->input_ended) {
        enum lab_round_result received = receive_input(client);
        if (received == LAB_ROUND_CLIENT_GONE) {
            return LAB_ROUND_CLIENT_GONE;
        }
        if (received == LAB_ROUND_BUSY) {
            busy = answer_lines(client, &needs_input) < 0 ? -1 : 1;
        }
    }
    if (busy < 0) {
        fprintf(stderr, "%s: no memory for client %s: closing it\n", lab_program(), client->peer);
        return LAB_ROUND_CLIENT_GONE;
    }
    int sent = send_and_answer(client, &needs_input);
    if (sent < 0) {
        return LAB_ROUND_CLIENT_GONE;
    }
    release_empty_buffers(client);
    if (client->input_ended && needs_input && client->output == NULL) {
        return LAB_ROUND_CLIENT_GONE; /* every line answered and every answer sent */
    }
    return busy || sent ? LAB_ROUND_BUSY : LAB_ROUND_IDLE;
}
