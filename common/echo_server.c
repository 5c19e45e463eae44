/*
 * echo_server.c - serving one echo client, the way lessons 03 and 04 teach it, for the
 * lessons after them whose new idea is elsewhere (threads, a table of clients, ...).
 *   lab_serve_echo_client  blocking: lesson 03's serve_client()
 *   lab_echo_round         non-blocking: lesson 04's round of answer, receive, send
 */
#include "lab.h"

#include <stdio.h>
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
    lab_line_reader_init(&client->input);
    client->output.used = 0;
    client->input_ended = 0;
    snprintf(client->peer, sizeof client->peer, "%s", peer);
}

/* Answers the whole lines already received while their answers fit in the output; sets
 * *needs_input when no whole line is left. Returns 1 if it answered any line. */
static int answer_lines(struct lab_echo_client *client, int *needs_input)
{
    char line[LAB_LINE_MAX + 2];
    size_t length;
    int answered = 0;
    *needs_input = 0;
    /* Backpressure: a line is taken only when its longest answer fits. A client that sends
     * but does not read is then no longer read either: its lines wait in the kernel's
     * buffers, then in its own, and this server's memory stays bounded. */
    while (sizeof client->output.bytes - client->output.used >= ANSWER_MAX) {
        enum lab_line_status status = lab_line_take(&client->input, line, &length);
        if (status == LAB_LINE_READY) {
            line[length] = '\n';
            lab_output_append(&client->output, line, length + 1); /* fits: checked above */
        } else if (status == LAB_LINE_TOO_LONG) {
            lab_output_append(&client->output, LAB_LINE_TOO_LONG_REPLY,
                              strlen(LAB_LINE_TOO_LONG_REPLY));
        } else {
            *needs_input = 1;
            break;
        }
        answered = 1;
    }
    return answered;
}

/* Receives what has arrived, if anything; returns LAB_ROUND_BUSY, LAB_ROUND_IDLE or, on an error,
 * LAB_ROUND_CLIENT_GONE. End of file is remembered in client->input_ended. */
static enum lab_round_result receive_input(struct lab_echo_client *client)
{
    lab_io_size received = lab_line_fill(&client->input, client->socket);
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

enum lab_round_result lab_echo_round(struct lab_echo_client *client)
{
    int needs_input;
    int busy = answer_lines(client, &needs_input); /* lines held back last round, if any */
    if (needs_input && !client->input_ended) {
        enum lab_round_result received = receive_input(client);
        if (received == LAB_ROUND_CLIENT_GONE) {
            return LAB_ROUND_CLIENT_GONE;
        }
        if (received == LAB_ROUND_BUSY) {
            busy = 1;
            answer_lines(client, &needs_input);
        }
    }
    size_t pending = client->output.used;
    if (lab_output_flush(&client->output, client->socket) != 0) {
        lab_warn("send", client->peer, lab_last_error()); /* EPIPE: SIGPIPE is ignored */
        return LAB_ROUND_CLIENT_GONE;
    }
    if (client->output.used < pending) {
        busy = 1;
    }
    if (client->input_ended && needs_input && client->output.used == 0) {
        return LAB_ROUND_CLIENT_GONE; /* every line answered and every answer sent */
    }
    return busy ? LAB_ROUND_BUSY : LAB_ROUND_IDLE;
}
