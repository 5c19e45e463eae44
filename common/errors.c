/*
 * errors.c - messages that name the program, the call, the address and the reason,
 * e.g. "server: bind 127.0.0.1:5050: Address already in use".
 */
#include "lab.h"

#include <stdio.h>
#include <stdlib.h>

void lab_warn(const char *call, const char *where, int error_code)
{
    char reason[256];
    lab_error_text(error_code, reason, sizeof reason);
    if (where != NULL) {
        fprintf(stderr, "%s: %s %s: %s\n", lab_program(), call, where, reason);
    } else {
        fprintf(stderr, "%s: %s: %s\n", lab_program(), call, reason);
    }
}

void lab_die(const char *call, const char *where, int error_code)
{
    lab_warn(call, where, error_code);
    exit(EXIT_FAILURE);
}

void lab_usage_error(const char *message, const char *value)
{
    if (value != NULL) {
        fprintf(stderr, "%s: %s '%s'\n", lab_program(), message, value);
    } else {
        fprintf(stderr, "%s: %s\n", lab_program(), message);
    }
    fprintf(stderr, "Try '%s --help'.\n", lab_program());
    exit(2);
}
