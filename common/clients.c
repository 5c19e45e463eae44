/*
 * clients.c - what every multi-client server shares once lessons 03-05 have shown it:
 * accepting with a back-off when out of descriptors, and, for the event loops of lessons
 * 08, 10 and 11, a list of clients and what each one waits for next (lesson 08's rule).
 */
#include "lab.h"

#include <stdio.h>
#include <stdlib.h>

lab_socket lab_try_accept(lab_socket listener, char *peer, size_t peer_size,
                          int *out_of_descriptors)
{
    struct sockaddr_storage address; /* big enough for IPv4 and IPv6 */
    socklen_t address_size = sizeof address;
    lab_socket accepted = accept(listener, (struct sockaddr *)&address, &address_size);
    *out_of_descriptors = 0;
    if (lab_socket_ok(accepted)) {
        lab_address_text((struct sockaddr *)&address, peer, peer_size);
        return accepted;
    }
    int error_code = lab_last_error();
    if (lab_error_is_would_block(error_code)) {
        return LAB_INVALID_SOCKET; /* nobody waiting: the normal end of an accept loop */
    }
    /* EINTR, ECONNABORTED (the client left before we accepted it), even EMFILE: one failed
     * accept is no reason to stop serving everybody else. */
    lab_warn("accept", NULL, error_code);
    *out_of_descriptors = lab_error_is_out_of_descriptors(error_code);
    return LAB_INVALID_SOCKET;
}

lab_socket lab_accept(lab_socket listener, char *peer, size_t peer_size)
{
    int out_of_descriptors;
    lab_socket accepted = lab_try_accept(listener, peer, peer_size, &out_of_descriptors);
    if (out_of_descriptors) {
        /* The connection stays queued and accept() would fail again at once: pause, so
         * that clients leaving can give descriptors back, instead of spinning. */
        lab_sleep_ms(LAB_ACCEPT_PAUSE_MS);
    }
    return accepted;
}

/* Lesson 08's client_wants(), whose comment says why. */
enum lab_want lab_echo_wants(const struct lab_echo_client *client)
{
    int want = 0;
    if (client->output != NULL) {
        want |= LAB_WANT_WRITE;
    }
    if (!client->input_ended &&
        (client->output == NULL || LAB_OUTPUT_MAX - client->output->used > LAB_LINE_MAX)) {
        want |= LAB_WANT_READ;
    }
    return (enum lab_want)want;
}

struct lab_echo_client *lab_client_add(struct lab_client_list *list, lab_socket s, const char *peer)
{
    struct lab_echo_client *client = malloc(sizeof *client);
    if (client == NULL) {
        fprintf(stderr, "%s: no memory for client %s: closing it\n", lab_program(), peer);
        lab_close(s);
        return NULL;
    }
    lab_echo_client_init(client, s, peer);
    client->previous = list->last;
    if (list->last != NULL) {
        list->last->next = client;
    } else {
        list->first = client;
    }
    list->last = client;
    list->count++;
    printf("client connected from %s\n", peer);
    return client;
}

void lab_client_remove(struct lab_client_list *list, struct lab_echo_client *client)
{
    if (client->previous != NULL) {
        client->previous->next = client->next;
    } else {
        list->first = client->next;
    }
    if (client->next != NULL) {
        client->next->previous = client->previous;
    } else {
        list->last = client->previous;
    }
    list->count--;
    printf("client %s disconnected\n", client->peer);
    lab_echo_client_close(client);
    free(client);
}
