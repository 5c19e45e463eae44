/*
 * lab.h - the small helper every lesson links.
 *
 * What it holds: only what an earlier lesson has already taught in its own file.
 *   platform   Winsock vs POSIX differences (docs/windows.md)         used from lesson 01
 *   errors     "program: call address: reason" messages               used from lesson 01
 *   arguments  port and --help parsing, reading a line from stdin       used from lesson 01
 *   address    printing addresses, "listening on"                     taught in lesson 01
 *   stream     send-all, the line reader, the echo client loop         taught in lesson 02
 *   resolve    getaddrinfo-based listen and connect, a blocking echo
 *              client served, the command line as strings             taught in lesson 03
 *   nonblock   non-blocking mode, would-block errors, output buffer,
 *              one non-blocking echo client's round                   taught in lesson 04
 *              a monotonic clock in milliseconds (lab_now_ms)         written out in lesson 08
 *   accept     accept() that names the peer and backs off when out of
 *              descriptors                                            taught in lessons 03-05
 *   clients    a list of clients (lesson 05's table, unbounded)       taught in lesson 05
 *              what a client waits for next (lab_echo_wants)          written out in lesson 08
 *   thread     detached threads and a mutex                           taught in lesson 06
 *   keyboard   stdin as something select()/poll() can wait on        taught in lesson 09
 *   loop       a poll() loop over connections, with hooks             taught in lesson 10
 *   checksum   Adler-32, to prove bytes arrived whole and in order    used from lesson 15
 *
 * Every function has a one-line contract above it. None keeps per-connection state in a
 * static: a connection's state lives in a struct the lesson owns.
 */
#ifndef LAB_H
#define LAB_H

#include <stddef.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
/* WSAPoll takes the same struct pollfd, POLLIN and POLLOUT as POSIX poll() (lesson 10). */
#define poll WSAPoll
#else
#include <poll.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>
#include <errno.h>
#endif

/* ---- platform ------------------------------------------------------------------------ */

#ifdef _WIN32
/* Winsock's SOCKET is an unsigned integer: "s < 0" is always false, so test validity
 * only with lab_socket_ok(). */
typedef SOCKET lab_socket;
#define LAB_INVALID_SOCKET INVALID_SOCKET
/* recv/send take and return int on Windows, ssize_t on POSIX. */
typedef int lab_io_size;
#else
typedef int lab_socket;
#define LAB_INVALID_SOCKET (-1)
typedef ssize_t lab_io_size;
#endif

/* Prepares the process: records the program name for messages, starts Winsock (exits on
 * failure) and makes stdout flush each line even when it is a pipe. Call first in main. */
void lab_startup(const char *program_name);

/* The name given to lab_startup ("server", "client"), for messages. */
const char *lab_program(void);

/* True when s is a real socket and not LAB_INVALID_SOCKET. */
int lab_socket_ok(lab_socket s);

/* Closes a socket (close on POSIX, closesocket on Windows); returns 0 or -1. */
int lab_close(lab_socket s);

/* The error code of the last failed socket call: errno, or WSAGetLastError() on Windows. */
int lab_last_error(void);

/* Writes a readable message for a socket error code into buffer and returns buffer. */
const char *lab_error_text(int error_code, char *buffer, size_t buffer_size);

/* True when error_code means "interrupted by a signal, try again" (EINTR, WSAEINTR). */
int lab_error_is_interrupt(int error_code);

/* True for "no descriptor left" (EMFILE, ENFILE; WSAEMFILE, WSAENOBUFS): a failing
 * accept() then fails again at once, so retrying without a pause spins (lesson 03). */
int lab_error_is_out_of_descriptors(int error_code);

/* ---- errors -------------------------------------------------------------------------- */

/* Prints "program: call where: reason" to stderr; where may be NULL. */
void lab_warn(const char *call, const char *where, int error_code);

/* Prints as lab_warn does, then exits with status 1. */
_Noreturn void lab_die(const char *call, const char *where, int error_code);

/* Prints "program: message" to stderr, then "Try 'program --help'." and exits with status 2. */
_Noreturn void lab_usage_error(const char *message, const char *value);

/* ---- arguments ----------------------------------------------------------------------- */

/* Parses a decimal port 0-65535 into *port; returns 0, or -1 for anything else. */
int lab_parse_port(const char *text, unsigned short *port);

/* Parses a decimal whole number from 0 to limit into *value; returns 0, or -1 otherwise. */
int lab_parse_count(const char *text, long limit, long *value);

/* The defaults of the lab's command lines (the seed's port, and loopback only). */
#define LAB_DEFAULT_PORT "5050"
#define LAB_DEFAULT_ADDRESS "127.0.0.1"

/* Reads "server [PORT [BIND-ADDRESS] ...]" into *port and *host (defaults above); exits
 * with a usage error for a bad port or more than 2 + extra_allowed arguments. */
void lab_server_arguments(int argc, char **argv, int extra_allowed, const char **port,
                          const char **host);

/* Reads "client [HOST [PORT] ...]" into *host and *port, as lab_server_arguments does. */
void lab_client_arguments(int argc, char **argv, int extra_allowed, const char **host,
                          const char **port);

/* True when argv[1] is --help or -h. */
int lab_wants_help(int argc, char **argv);

/* Reads one line from stdin into line without its "\n" or "\r\n"; a longer line is cut
 * to size - 1 bytes and its rest skipped. Returns the length, or -1 at end of input. */
int lab_read_stdin_line(char *line, size_t size);

/* ---- address ------------------------------------------------------------------------- */

/* Room for "[ffff:...:ffff]:65535" and a terminating NUL. */
#define LAB_ADDRESS_TEXT 64

/* Writes a numeric "1.2.3.4:80" or "[::1]:80" for address into text; returns text. */
const char *lab_address_text(const struct sockaddr *address, char *text, size_t text_size);

/* Writes the local address of s as lab_address_text does; "?" if it cannot be read. */
const char *lab_local_address_text(lab_socket s, char *text, size_t text_size);

/* Prints "listening on ADDRESS:PORT" for a listening socket to stdout and flushes it. */
void lab_announce_listening(lab_socket listener);

/* Prints "connected to ADDRESS:PORT": which of a name's addresses the socket reached. */
void lab_announce_connected(lab_socket server);

/* Lesson 01's listener for "server [PORT [BIND-ADDRESS]]" (IPv4 only, default 5050 and
 * 127.0.0.1): socket, bind, listen with a backlog of 1; exits with a message on failure. */
lab_socket lab_listen_ipv4(int argc, char **argv);

/* ---- stream -------------------------------------------------------------------------- */

/* Longest line the lab accepts, without its "\n" or "\r\n". */
#define LAB_LINE_MAX 1024

/* The answer a server gives to a longer line (the rest of that line is discarded). */
#define LAB_LINE_TOO_LONG_REPLY "error: line too long (limit 1024 bytes)\n"

/* Sends all len bytes on a blocking socket, retrying short sends; returns 0 or -1. */
int lab_send_all(lab_socket s, const void *data, size_t len);

/* What lab_line_take and lab_read_line report. */
enum lab_line_status {
    LAB_LINE_READY,     /* a whole line was copied out */
    LAB_LINE_TOO_LONG,  /* a line passed LAB_LINE_MAX; its bytes are being discarded */
    LAB_LINE_NEED_MORE, /* no whole line buffered yet: receive more */
    LAB_LINE_CLOSED,    /* the peer closed the connection (end of file) */
    LAB_LINE_ERROR      /* recv failed; lab_last_error() says why */
};

/* One connection's partial input. Bytes after a line stay here for the next call. */
struct lab_line_reader {
    char bytes[LAB_LINE_MAX + 2]; /* room for the longest line and its "\r\n" */
    size_t used;                  /* bytes held in bytes[] */
    int discarding;               /* 1 while skipping the rest of an over-long line */
};

/* Empties a reader; call once per connection before use. */
void lab_line_reader_init(struct lab_line_reader *reader);

/* Takes one buffered line into line[LAB_LINE_MAX + 1] (NUL-added, "\r\n" dropped). */
enum lab_line_status lab_line_take(struct lab_line_reader *reader, char *line, size_t *length);

/* Receives once into the reader's free space (call only after lab_line_take said
 * LAB_LINE_NEED_MORE, so there is some); returns bytes read, 0 at EOF, -1 on error. */
lab_io_size lab_line_fill(struct lab_line_reader *reader, lab_socket s);

/* Blocks until a line, an over-long line, EOF or an error (take, then fill, repeated). */
enum lab_line_status lab_read_line(struct lab_line_reader *reader, lab_socket s, char *line,
                                   size_t *length);

/* Sends each stdin line to an echo server and prints its answer, until end of input;
 * returns 0, or 1 if the connection failed or the server closed it. */
int lab_echo_stdin(lab_socket server);

/* Lesson 03's client, whole: "client [HOST [PORT]]" and --help, connects, echoes each stdin
 * line and prints the answer; returns main's exit status. For lessons that change the server. */
int lab_echo_client_main(int argc, char **argv);

/* Lesson 03's serve_client(): echoes lines on a blocking socket until the client leaves
 * or fails (then warns, naming peer); never ends the program. */
void lab_serve_echo_client(lab_socket client, const char *peer);

/* ---- resolve ------------------------------------------------------------------------- */

/* Resolves host:port with getaddrinfo, binds the first address that works with
 * SO_REUSEADDR and listens; exits with a message naming the address on failure. */
lab_socket lab_listen(const char *host, const char *port);

/* Resolves host:port and connects to the first address that answers; exits on failure. */
lab_socket lab_connect(const char *host, const char *port);

/* ---- nonblock ------------------------------------------------------------------------ */

/* Turns non-blocking mode on (fcntl O_NONBLOCK, or ioctlsocket FIONBIO); returns 0 or -1. */
int lab_set_nonblocking(lab_socket s);

/* True when error_code means "nothing to do now, try later" (EAGAIN, EWOULDBLOCK). */
int lab_error_is_would_block(int error_code);

/* Pauses the calling thread for about milliseconds ms (nanosleep, or Sleep on Windows). */
void lab_sleep_ms(int milliseconds);

/* Lesson 08's now_ms(): milliseconds on a clock that only goes forward (CLOCK_MONOTONIC,
 * GetTickCount64), for how long until a deadline; its zero means nothing. */
long long lab_now_ms(void);

/* Bytes waiting to be sent on a non-blocking socket. */
#define LAB_OUTPUT_MAX (16 * 1024)
struct lab_output {
    char bytes[LAB_OUTPUT_MAX];
    size_t used;
};

/* Appends len bytes if they fit; returns 0, or -1 (and appends nothing) if they do not. */
int lab_output_append(struct lab_output *output, const void *data, size_t len);

/* Sends as much as the socket takes now; returns 0 (maybe some left) or -1 on error. */
int lab_output_flush(struct lab_output *output, lab_socket s);

/* Lesson 04's state of one client of a non-blocking echo server. Its buffers are allocated
 * only while they hold bytes, so a client that is connected but quiet costs little. */
struct lab_echo_client {
    lab_socket socket;             /* LAB_INVALID_SOCKET while nobody is being served */
    struct lab_line_reader *input; /* part of a line received; NULL while there is none */
    struct lab_output *output;     /* answers not yet taken by the socket; NULL while none */
    int input_ended;               /* the client sent EOF: finish its answers, then close */
    int waiting_for;               /* free for the event loop: what it last asked for */
    char peer[LAB_ADDRESS_TEXT];
    struct lab_echo_client *previous, *next; /* neighbours in a struct lab_client_list */
};

/* What one round did for a client. */
enum lab_round_result {
    LAB_ROUND_IDLE,       /* nothing: no bytes in, none out */
    LAB_ROUND_BUSY,       /* bytes moved: more may wait in the socket (edge-triggered: go again) */
    LAB_ROUND_CLIENT_GONE /* the client left or failed (warned about): close it */
};

/* Empties a client's state for a socket just accepted from peer. */
void lab_echo_client_init(struct lab_echo_client *client, lab_socket s, const char *peer);

/* One round for a non-blocking client: answer, receive once, answer, then send and answer
 * in turn; a line is taken only while its answer fits (backpressure). It returns only when
 * the client cannot go on without the kernel: no whole line waits while its answer would
 * fit, and answers wait only if the socket refused them. So a level-triggered loop may wait
 * for what lab_echo_wants() says after any round. Calling it again until LAB_ROUND_IDLE
 * drains the socket (the last receive said "would block"): edge-triggered loops must. */
enum lab_round_result lab_echo_round(struct lab_echo_client *client);

/* Closes the client's socket and frees its buffers; the struct can then be reused. */
void lab_echo_client_close(struct lab_echo_client *client);

/* ---- accept -------------------------------------------------------------------------- */

/* How long a server out of descriptors waits before accept() again: at most 20 warnings a
 * second. A thread that only accepts sleeps (lab_accept); an event loop stops watching its
 * listener for that long and serves its clients meanwhile (lessons 08, 10, 11). */
#define LAB_ACCEPT_PAUSE_MS 50

/* Accepts one connection and writes "ADDR:PORT" of the peer into peer. Returns
 * LAB_INVALID_SOCKET, silently, when a non-blocking listener has nobody waiting, and with a
 * warning on other failures; then sets *out_of_descriptors to 1 if no descriptor was left
 * (the connection stays queued, so accept() would fail again at once), else to 0. */
lab_socket lab_try_accept(lab_socket listener, char *peer, size_t peer_size,
                          int *out_of_descriptors);

/* lab_try_accept, then a LAB_ACCEPT_PAUSE_MS sleep when out of descriptors, so that a loop
 * retrying at once never spins. For threads that only accept. Never ends the program. */
lab_socket lab_accept(lab_socket listener, char *peer, size_t peer_size);

/* ---- clients ------------------------------------------------------------------------- */

/* What a client of an event loop waits for next (lab_echo_wants): reading while it may
 * send more and its answers fit, writing only while answers are pending. */
enum lab_want { LAB_WANT_READ = 1, LAB_WANT_WRITE = 2, LAB_WANT_BOTH = 3 };

/* What the loop should wait for on this client's socket after a round that kept it. */
enum lab_want lab_echo_wants(const struct lab_echo_client *client);

/* The clients of an event loop, in the order they arrived; found by pointer, never by
 * descriptor number (Winsock's SOCKET values are not small integers). */
struct lab_client_list {
    struct lab_echo_client *first, *last;
    size_t count;
};

/* Allocates a client for a socket just accepted, appends it and prints "client connected
 * from PEER"; returns it, or NULL (after closing the socket, with a warning) if no memory. */
struct lab_echo_client *lab_client_add(struct lab_client_list *list, lab_socket s,
                                       const char *peer);

/* Unlinks a client, closes it, prints "client PEER disconnected" and frees it. */
void lab_client_remove(struct lab_client_list *list, struct lab_echo_client *client);

/* ---- loop: lesson 10's poll() loop, for servers whose idea lies elsewhere (lesson 12) ---- */

/* What the loop knows of a connection; a lesson's own struct begins with one, so that a
 * struct lab_connection * and the lesson's pointer are the same address. */
struct lab_connection {
    lab_socket socket;
    char peer[LAB_ADDRESS_TEXT];
    struct lab_connection *next; /* the next in struct lab_connection_list */
};

/* The connections of the loop, newest first, and how many there are. */
struct lab_connection_list {
    struct lab_connection *first;
    size_t count;
};

/* What lab_poll_loop asks of the lesson, connection by connection. */
struct lab_loop_hooks {
    /* A new connection (non-blocking) from peer: returns its state (the loop then fills in
     * socket and peer, and adds it), or NULL to refuse it (the loop closes the socket). */
    struct lab_connection *(*accepted)(const char *peer);
    /* What the connection waits for now (LAB_WANT_...), or 0: close and remove it. */
    int (*wants)(struct lab_connection *connection);
    /* Its socket is ready (revents from poll()): do what goes without waiting. */
    void (*ready)(struct lab_connection *connection, short revents);
    /* It was removed from the list and its socket closed: free what it holds. */
    void (*removed)(struct lab_connection *connection);
};

/* Serves for ever: poll() over the listener and every connection in list, as lesson 10's
 * loop does (array kept between wakes, write interest only as wants() says, the listener
 * left out of the wait LAB_ACCEPT_PAUSE_MS when no descriptor is free). */
_Noreturn void lab_poll_loop(lab_socket listener, struct lab_connection_list *list,
                             const struct lab_loop_hooks *hooks);

/* ---- thread -------------------------------------------------------------------------- */

/* Starts body(argument) on a new detached thread; returns 0, or -1 if it could not start. */
int lab_thread_start(void (*body)(void *), void *argument);

#ifdef _WIN32
typedef CRITICAL_SECTION lab_mutex;
#else
#include <pthread.h>
typedef pthread_mutex_t lab_mutex;
#endif

/* Initialises a mutex before first use. */
void lab_mutex_init(lab_mutex *mutex);

/* Locks a mutex, waiting for it if another thread holds it. */
void lab_mutex_lock(lab_mutex *mutex);

/* Unlocks a mutex this thread holds. */
void lab_mutex_unlock(lab_mutex *mutex);

/* ---- keyboard ------------------------------------------------------------------------ */

/* Standard input as something a select() or poll() loop waits on beside its sockets. POSIX:
 * stdin itself, descriptor 0. Windows, whose select() and WSAPoll() take only sockets: one
 * end of a loopback TCP connection that a thread feeds with what it reads from stdin. */
struct lab_keyboard {
    /* For an fd_set, or a pollfd with POLLIN: readable means typed bytes or end of input. In
     * revents that is POLLIN or POLLHUP (a pipe's end of input sets POLLHUP alone). */
    lab_socket waitable;
};

/* Sets keyboard->waitable up (on Windows starts the thread); once per process. Returns 0, or
 * -1 with a warning. */
int lab_keyboard_open(struct lab_keyboard *keyboard);

/* Reads what was typed, raw (never stdio), once waitable is readable; returns the byte
 * count (> 0), 0 at end of input, or -1 on an error (warned). */
long lab_keyboard_read(struct lab_keyboard *keyboard, char *buffer, size_t size);

/* ---- checksum ----------------------------------------------------------------------- */

/* Adler-32 (RFC 1950) of size bytes, continuing from adler (start from 1): the same value
 * however the bytes are cut into calls. */
unsigned long lab_adler32(unsigned long adler, const void *data, size_t size);

/* The Adler-32 of two parts one after the other, from each part's own Adler-32 and the
 * second's length: no byte is read again. */
unsigned long lab_adler32_combine(unsigned long first, unsigned long second, size_t second_size);

#endif /* LAB_H */
