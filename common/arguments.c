/*
 * arguments.c - the command line every lesson shares:
 *   server [PORT [BIND-ADDRESS]]     client [HOST [PORT]]     --help
 */
#include "lab.h"

#include <stdio.h>
#include <string.h>

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

int lab_wants_help(int argc, char **argv)
{
    return argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
}

int lab_read_stdin_line(char *line, size_t size)
{
    if (fgets(line, (int)size, stdin) == NULL) {
        return -1;
    }
    size_t length = strlen(line);
    if (length > 0 && line[length - 1] == '\n') {
        line[--length] = '\0';
    } else {
        int skipped; /* no newline: the line did not fit, so drop the rest of it */
        while ((skipped = getchar()) != EOF && skipped != '\n') {
        }
    }
    if (length > 0 && line[length - 1] == '\r') {
        line[--length] = '\0';
    }
    return 0;
}
