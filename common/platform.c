/*
 * platform.c - the few places where Winsock and POSIX sockets differ.
 * Each difference is explained in docs/windows.md.
 */
#include "lab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *program_name = "lab";

#ifdef _WIN32
static void stop_winsock(void)
{
    WSACleanup();
}
#endif

void lab_startup(const char *name)
{
    program_name = name;
#ifdef _WIN32
    /* Every Winsock call fails with WSANOTINITIALISED until WSAStartup has run. */
    WSADATA winsock_data;
    int error_code = WSAStartup(MAKEWORD(2, 2), &winsock_data);
    if (error_code != 0) {
        lab_die("WSAStartup", NULL, error_code);
    }
    atexit(stop_winsock);
    /* The Windows C runtime treats _IOLBF as full buffering, so lines would sit in the
     * buffer when stdout is a pipe; unbuffered is the only way to see each line at once. */
    setvbuf(stdout, NULL, _IONBF, 0);
#else
    /* A terminal gets line buffering anyway; a pipe (a test, `| tee`) would not. */
    setvbuf(stdout, NULL, _IOLBF, 0);
#endif
}

const char *lab_program(void)
{
    return program_name;
}

int lab_socket_ok(lab_socket s)
{
    return s != LAB_INVALID_SOCKET;
}

int lab_close(lab_socket s)
{
#ifdef _WIN32
    return closesocket(s) == 0 ? 0 : -1;
#else
    return close(s);
#endif
}

int lab_last_error(void)
{
#ifdef _WIN32
    return WSAGetLastError();
#else
    return errno;
#endif
}

int lab_error_is_interrupt(int error_code)
{
#ifdef _WIN32
    return error_code == WSAEINTR;
#else
    return error_code == EINTR;
#endif
}

int lab_error_is_out_of_descriptors(int error_code)
{
#ifdef _WIN32
    return error_code == WSAEMFILE || error_code == WSAENOBUFS;
#else
    return error_code == EMFILE || error_code == ENFILE;
#endif
}

#ifdef _WIN32
/* The Winsock errors the lab meets, in words, for when FormatMessage has none (Wine). */
static const struct {
    int code;
    const char *text;
} winsock_errors[] = {
    {WSAEINTR, "Interrupted function call"},
    {WSAEACCES, "Permission denied"},
    {WSAEINVAL, "Invalid argument"},
    {WSAEMFILE, "Too many open sockets"},
    {WSAEWOULDBLOCK, "Resource temporarily unavailable"},
    {WSAEADDRINUSE, "Address already in use"},
    {WSAEADDRNOTAVAIL, "Cannot assign requested address"},
    {WSAENETUNREACH, "Network is unreachable"},
    {WSAECONNABORTED, "Software caused connection abort"},
    {WSAECONNRESET, "Connection reset by peer"},
    {WSAENOBUFS, "No buffer space available"},
    {WSAENOTCONN, "Socket is not connected"},
    {WSAETIMEDOUT, "Connection timed out"},
    {WSAECONNREFUSED, "Connection refused"},
    {WSAEHOSTUNREACH, "No route to host"},
};

/* The table's words for a Winsock code, or NULL if the lab does not expect it. */
static const char *winsock_error_name(int error_code)
{
    for (size_t i = 0; i < sizeof winsock_errors / sizeof winsock_errors[0]; i++) {
        if (winsock_errors[i].code == error_code) {
            return winsock_errors[i].text;
        }
    }
    return NULL;
}
#endif

const char *lab_error_text(int error_code, char *buffer, size_t buffer_size)
{
#ifdef _WIN32
    /* Winsock codes are not errno values: strerror() would name the wrong error. */
    DWORD length = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
                                  (DWORD)error_code, 0, buffer, (DWORD)buffer_size, NULL);
    while (length > 0 && (buffer[length - 1] == '\n' || buffer[length - 1] == '\r' ||
                          buffer[length - 1] == ' ' || buffer[length - 1] == '.')) {
        buffer[--length] = '\0';
    }
    if (length == 0) {
        /* Keep the number: it is what a search or Microsoft's table of codes finds. */
        const char *name = winsock_error_name(error_code);
        if (name != NULL) {
            snprintf(buffer, buffer_size, "%s (Winsock error %d)", name, error_code);
        } else {
            snprintf(buffer, buffer_size, "Winsock error %d", error_code);
        }
    }
#else
    /* strerror() may share one buffer between threads; the POSIX strerror_r does not. */
    if (strerror_r(error_code, buffer, buffer_size) != 0) {
        snprintf(buffer, buffer_size, "error %d", error_code);
    }
#endif
    return buffer;
}
