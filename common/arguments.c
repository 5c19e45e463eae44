/*
 * arguments.c - the command line every lesson shares:
 *   server [PORT [BIND-ADDRESS]]     client [HOST [PORT]]     --help
 */
#include "lab.h"

#include <stdio.h>
#include <string.h>

int lab_parse_count(const char *text, long limit, long *value)
{
    /* Digits only, and few enough that the value cannot overflow before the check. */
    long parsed = 0;
    size_t digits = strlen(text);
    if (digits == 0 || digits > 9) {
        return -1;
    }
    for (size_t i = 0; i < digits; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }
        parsed = parsed * 10 + (text[i] - '0');
    }
    if (parsed > limit) {
        return -1;
    }
    *value = parsed;
    return 0;
}

int lab_parse_port(const char *text, unsigned short *port)
{
    /* Digits only, at most five of them: atoi("abc") would be 0, a real port to bind. */
    unsigned long value = 0;
    size_t digits = strlen(text);
    if (digits == 0 || digits > 5) {
        return -1;
    }
    for (size_t i = 0; i < digits; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }
        value = value * 10 + (unsigned long)(text[i] - '0');
    }
    if (value > 65535) {
        return -1;
    }
    *port = (unsigned short)value;
    return 0;
}

/* Reads the two positional arguments both command lines share; exits on bad ones. */
static void read_two(int argc, char **argv, int extra_allowed, const char **first,
                     const char **second, int port_index)
{
    if (argc > 3 + extra_allowed) {
        lab_usage_error("too many arguments", NULL);
    }
    if (argc > 1) {
        *first = argv[1];
    }
    if (argc > 2) {
        *second = argv[2];
    }
    unsigned short ignored;
    const char *port = port_index == 1 ? *first : *second;
    if (lab_parse_port(port, &ignored) != 0) {
        lab_usage_error("invalid port (expected 0-65535)", port);
    }
}

void lab_server_arguments(int argc, char **argv, int extra_allowed, const char **port,
                          const char **host)
{
    *port = LAB_DEFAULT_PORT;
    *host = LAB_DEFAULT_ADDRESS;
    read_two(argc, argv, extra_allowed, port, host, 1);
}

void lab_client_arguments(int argc, char **argv, int extra_allowed, const char **host,
                          const char **port)
{
    *host = LAB_DEFAULT_ADDRESS;
    *port = LAB_DEFAULT_PORT;
    read_two(argc, argv, extra_allowed, host, port, 2);
}

int lab_wants_help(int argc, char **argv)
{
    return argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
}

int lab_read_stdin_line(char *line, size_t size)
{
    /* A byte at a time, not fgets(): a '\0' typed in a line must not look like its end. */
    size_t length = 0;
    int byte;
    while ((byte = getchar()) != EOF && byte != '\n') {
        if (length + 1 < size) {
            line[length++] = (char)byte; /* a longer line: the rest is read and dropped */
        }
    }
    if (byte == EOF && length == 0) {
        return -1;
    }
    if (length > 0 && line[length - 1] == '\r') {
        length--;
    }
    line[length] = '\0';
    return (int)length;
}
