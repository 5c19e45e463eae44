/*
 * poll_loop.c - lesson 10's poll() loop, with the serving left to hooks, for the lessons
 * after it whose idea is what a connection does, not how the loop waits (lesson 12's room).
 * Read lessons/10-poll/server.c first: this is its serve_forever() with the echo round
 * replaced by the hooks of struct lab_loop_hooks (lab.h).
 */
#include "lab.h"

#include <stdio.h>
#include <stdlib.h>

/* Accepts every waiting connection and adds those the lesson takes. Returns 1 if one is
 * left waiting because no descriptor is free, else 0. */
static int accept_connections(lab_socket listener, struct lab_connection_list *list,
                              const struct lab_loop_hooks *hooks)
{
    char peer[LAB_ADDRESS_TEXT];
    lab_socket accepted;
    int out_of_descriptors;
    while (lab_socket_ok(accepted =
                             lab_try_accept(listener, peer, sizeof peer, &out_of_descriptors))) {
        struct lab_connection *connection = NULL;
        if (lab_set_nonblocking(accepted) != 0) {
            lab_warn("set non-blocking", peer, lab_last_error());
        } else {
            connection = hooks->accepted(peer);
        }
        if (connection == NULL) {
            lab_close(accepted);
            continue;
        }
        connection->socket = accepted;
        snprintf(connection->peer, sizeof connection->peer, "%s", peer);
        connection->next = list->first;
        list->first = connection;
        list->count++;
    }
    return out_of_descriptors;
}

/* Removes every connection that wants nothing more, and frees it through the hooks. Its
 * removed() may queue lines for others (or drop them): so this runs until nothing changes,
 * before any entry is filled, and every entry then asks what its connection wants now. */
static void remove_finished(struct lab_connection_list *list, const struct lab_loop_hooks *hooks)
{
    int removed_any = 1;
    while (removed_any) {
        removed_any = 0;
        for (struct lab_connection **link = &list->first; *link != NULL;) {
            struct lab_connection *connection = *link;
            if (hooks->wants(connection) != 0) {
                link = &connection->next;
                continue;
            }
            *link = connection->next;
            list->count--;
            lab_close(connection->socket);
            hooks->removed(connection);
            removed_any = 1;
        }
    }
}

/* Fills the array poll() reads (kept, grown only with the list): entry 0 the listener, then
 * each connection and what it waits for. */
static void fill_entries(struct pollfd **entries, size_t *capacity, lab_socket listener,
                         struct lab_connection_list *list, const struct lab_loop_hooks *hooks)
{
    if (list->count + 1 > *capacity) {
        *capacity = 2 * (list->count + 1);
        if ((*entries = realloc(*entries, *capacity * sizeof **entries)) == NULL) {
            fprintf(stderr, "%s: no memory for %zu poll entries\n", lab_program(), *capacity);
            exit(1);
        }
    }
    (*entries)[0] = (struct pollfd){.fd = listener, .events = POLLIN};
    struct pollfd *entry = *entries + 1;
    for (struct lab_connection *connection = list->first; connection != NULL;
         connection = connection->next) {
        int want = hooks->wants(connection);
        *entry++ = (struct pollfd){.fd = connection->socket,
                                   .events = (short)(((want & LAB_WANT_READ) ? POLLIN : 0) |
                                                     ((want & LAB_WANT_WRITE) ? POLLOUT : 0))};
    }
}

void lab_poll_loop(lab_socket listener, struct lab_connection_list *list,
                   const struct lab_loop_hooks *hooks)
{
    struct pollfd *entries = NULL;
    size_t capacity = 0;
    long long accept_again_at = 0; /* out of descriptors: leave the listener out until then */
    for (;;) {
        remove_finished(list, hooks);
        fill_entries(&entries, &capacity, listener, list, hooks);
        long long pause_left = accept_again_at - lab_now_ms();
        if (pause_left > 0 && list->count == 0) {
            lab_sleep_ms((int)pause_left); /* nobody to serve meanwhile (and Windows fails */
            continue;                      /* a wait for no socket at all) */
        }
        int ready = pause_left > 0 ? poll(entries + 1, list->count, (int)pause_left)
                                   : poll(entries, list->count + 1, -1);
        if (ready < 0 && !lab_error_is_interrupt(lab_last_error())) {
            lab_die("poll", NULL, lab_last_error());
        }
        struct pollfd *entry = entries + 1; /* in the list's order, as filled */
        for (struct lab_connection *connection = list->first; ready > 0 && connection != NULL;
             connection = connection->next) {
            if (entry->revents != 0) {
                hooks->ready(connection, entry->revents); /* it stays in the list till later */
            }
            entry++;
        }
        /* Newcomers last, and at the front of the list: the walk above is over. */
        if (ready > 0 && pause_left <= 0 && entries[0].revents != 0 &&
            accept_connections(listener, list, hooks)) {
            accept_again_at = lab_now_ms() + LAB_ACCEPT_PAUSE_MS; /* not a sleep: serve on */
        }
    }
}
