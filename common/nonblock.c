/*
 * nonblock.c - what lesson 04 teaches: a non-blocking socket returns "would block"
 * instead of waiting, so a program must keep what it could not send for later.
 */
#include "lab.h"

#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#include <time.h>
#endif

int lab_set_nonblocking(lab_socket s)
{
#ifdef _WIN32
    u_long on = 1;
    return ioctlsocket(s, FIONBIO, &on) == 0 ? 0 : -1;
#else
    int flags = fcntl(s, F_GETFL, 0); /* keep the other flags: set one bit, not all */
    if (flags < 0) {
        return -1;
    }
    return fcntl(s, F_SETFL, flags | O_NONBLOCK);
#endif
}

int lab_error_is_would_block(int error_code)
{
#ifdef _WIN32
    return error_code == WSAEWOULDBLOCK;
#else
    /* POSIX allows the two to differ; on Linux they are the same number. */
    return error_code == EAGAIN || error_code == EWOULDBLOCK;
#endif
}

void lab_sleep_ms(int milliseconds)
{
#ifdef _WIN32
    Sleep((DWORD)milliseconds);
#else
    struct timespec pause = {milliseconds / 1000, (long)(milliseconds % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
        /* a signal cut the pause short: sleep the rest */
    }
#endif
}

long long lab_now_ms(void)
{
#ifdef _WIN32
    return (long long)GetTickCount64();
#else
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now); /* not the wall clock: it can jump */
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
#endif
}

int lab_output_append(struct lab_output *output, const void *data, size_t len)
{
    if (len > sizeof output->bytes - output->used) {
        return -1;
    }
    memcpy(output->bytes + output->used, data, len);
    output->used += len;
    return 0;
}

int lab_output_flush(struct lab_output *output, lab_socket s)
{
    size_t sent_total = 0;
    while (sent_total < output->used) {
        lab_io_size sent = send(s, output->bytes + sent_total, (int)(output->used - sent_total), 0);
        if (sent < 0) {
            int error_code = lab_last_error();
            if (lab_error_is_interrupt(error_code)) {
                continue;
            }
            if (!lab_error_is_would_block(error_code)) {
                return -1;
            }
            break; /* the socket's buffer is full: keep the rest for the next round */
        }
        sent_total += (size_t)sent;
    }
    memmove(output->bytes, output->bytes + sent_total, output->used - sent_total);
    output->used -= sent_total;
    return 0;
}
