/*
 * keyboard.c - stdin as something select() and poll() can wait on (lesson 09).
 *
 * On POSIX stdin is a descriptor like a socket: it goes into an fd_set or a pollfd as it is.
 * Windows' select() and WSAPoll() take sockets only (stdin gives WSAENOTSOCK), so there a
 * thread reads stdin and sends what it reads into one end of a loopback TCP connection,
 * and the loop waits on the other end. docs/windows.md says why not WaitForMultipleObjects.
 * Both read raw bytes, never through stdio: stdio would pull more than one line into its
 * own buffer, where select() cannot see it.
 */
#include "lab.h"

#ifdef _WIN32
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The thread's whole job. It owns its end of the pair and frees the block that brought it,
 * so it shares nothing with the caller: main() may return while the thread is still blocked
 * in ReadFile() (nothing typed yet), and the end of the process then ends it. */
static void forward_stdin(void *argument)
{
    lab_socket feeder = *(lab_socket *)argument;
    free(argument);
    HANDLE input = GetStdHandle(STD_INPUT_HANDLE);
    char chunk[4096];
    for (;;) {
        DWORD count = 0;
        if (!ReadFile(input, chunk, sizeof chunk, &count, NULL)) {
            DWORD error_code = GetLastError();
            if (error_code != ERROR_BROKEN_PIPE) { /* broken pipe: the writer closed it */
                lab_warn("ReadFile", "stdin", (int)error_code);
            }
            break;
        }
        if (count == 0) {
            break; /* end of a file, or Ctrl-Z Enter on a console */
        }
        /* Blocking: when the loop stops reading (its output is full), this waits once the
         * pair's small buffers are full, and so does whoever writes into stdin. */
        if (lab_send_all(feeder, chunk, count) != 0) {
            lab_warn("send", "keyboard", lab_last_error());
            break;
        }
    }
    /* A FIN, which lab_keyboard_read() reports as end of input: nothing waits unread on this
     * end (the loop never sends), so closesocket() is graceful, not a reset. */
    lab_close(feeder);
}

/* Makes pair[0] and pair[1] the two ends of one TCP connection on 127.0.0.1, as POSIX's
 * socketpair() would (Winsock has none); returns NULL, or the name of the call that failed. */
static const char *connect_pair(lab_socket listener, lab_socket pair[2])
{
    struct sockaddr_in address, ours, peer;
    int size = sizeof address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* and port 0: any free one */
    /* Small buffers (the accepted end inherits the listener's): left to grow, the pair held
     * megabytes of typed input while the loop waited for the server to take its output. */
    int buffer_size = LAB_OUTPUT_MAX;
    if (setsockopt(listener, SOL_SOCKET, SO_RCVBUF, (const char *)&buffer_size,
                   sizeof buffer_size) != 0 ||
        setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, (const char *)&buffer_size,
                   sizeof buffer_size) != 0) {
        return "setsockopt";
    }
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0) {
        return "bind";
    }
    if (listen(listener, 1) != 0) {
        return "listen";
    }
    if (getsockname(listener, (struct sockaddr *)&address, &size) != 0) {
        return "getsockname"; /* which port bind() chose */
    }
    /* Blocking is fine: the kernel completes a local handshake before anyone accepts. */
    if (connect(pair[0], (struct sockaddr *)&address, sizeof address) != 0) {
        return "connect";
    }
    size = sizeof ours;
    if (getsockname(pair[0], (struct sockaddr *)&ours, &size) != 0) {
        return "getsockname";
    }
    /* Any local program may connect to the listener too, and typed bytes must come from our
     * thread alone: skip whoever is not pair[0]. Ours is queued already, so it comes. */
    for (;;) {
        size = sizeof peer;
        pair[1] = accept(listener, (struct sockaddr *)&peer, &size);
        if (!lab_socket_ok(pair[1])) {
            return "accept";
        }
        if (peer.sin_port == ours.sin_port && peer.sin_addr.s_addr == ours.sin_addr.s_addr) {
            return NULL;
        }
        lab_close(pair[1]);
    }
}

int lab_keyboard_open(struct lab_keyboard *keyboard)
{
    lab_socket listener = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    lab_socket pair[2] = {socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), LAB_INVALID_SOCKET};
    const char *failed = "socket";
    if (lab_socket_ok(listener) && lab_socket_ok(pair[0])) {
        failed = connect_pair(listener, pair);
    }
    if (failed != NULL) {
        lab_warn(failed, "127.0.0.1", lab_last_error());
    }
    if (lab_socket_ok(listener)) {
        lab_close(listener); /* the pair stays connected without it */
    }
    if (failed == NULL) {
        lab_socket *feeder = malloc(sizeof *feeder); /* the thread's: see forward_stdin() */
        if (feeder != NULL) {
            *feeder = pair[0];
            if (lab_thread_start(forward_stdin, feeder) == 0) {
                keyboard->waitable = pair[1];
                return 0;
            }
            free(feeder);
        }
        fprintf(stderr, "%s: cannot start the keyboard thread\n", lab_program());
    }
    for (int i = 0; i < 2; i++) {
        if (lab_socket_ok(pair[i])) {
            lab_close(pair[i]);
        }
    }
    return -1;
}

long lab_keyboard_read(struct lab_keyboard *keyboard, char *buffer, size_t size)
{
    int count = recv(keyboard->waitable, buffer, size > INT_MAX ? INT_MAX : (int)size, 0);
    if (count < 0) {
        lab_warn("recv", "keyboard", lab_last_error());
        return -1;
    }
    return count;
}

#else

int lab_keyboard_open(struct lab_keyboard *keyboard)
{
    keyboard->waitable = STDIN_FILENO;
    return 0;
}

long lab_keyboard_read(struct lab_keyboard *keyboard, char *buffer, size_t size)
{
    ssize_t count;
    do {
        count = read(keyboard->waitable, buffer, size);
    } while (count < 0 && errno == EINTR);
    if (count < 0) {
        lab_warn("read", "stdin", errno);
        return -1;
    }
    return (long)count;
}

#endif
