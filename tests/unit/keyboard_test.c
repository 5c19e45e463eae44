/*
 * keyboard_test.c - the contract of lab_keyboard_read() on POSIX (common/keyboard.c,
 * common/lab.h), with stdin replaced by what a user may give a client:
 *   - a pipe: the bytes typed, as they come; at its end 0, and no warning;
 *   - a directory (client < /): -1, and a warning naming the call and stdin, so that the
 *     user learns why the client stopped reading the keyboard.
 * Run:    build/tests/keyboard_test (CTest: ctest --preset default -R unit.keyboard)
 * POSIX only: on Windows the keyboard is a thread and a socket (not tested here).
 */
#include "lab.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks, failures;

static void check(int condition, const char *claim)
{
    printf("%s: %s\n", condition ? "ok" : "FAILED", claim);
    fflush(stdout);
    checks++;
    failures += !condition;
}

/* Makes descriptor 0 (stdin) a copy of descriptor from, which it then closes. */
static void stdin_from(int from)
{
    if (dup2(from, STDIN_FILENO) < 0) {
        perror("dup2");
        exit(1);
    }
    close(from);
}

/* Calls lab_keyboard_read() with stderr sent to a file; returns its result and puts what
 * it wrote to stderr in warning. */
static long read_keyboard(char *buffer, size_t size, char *warning, size_t warning_size)
{
    FILE *captured = tmpfile();
    if (captured == NULL) {
        perror("tmpfile");
        exit(1);
    }
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(captured), STDERR_FILENO);
    struct lab_keyboard keyboard;
    long count = lab_keyboard_open(&keyboard) == 0 ? lab_keyboard_read(&keyboard, buffer, size)
                                                   : -2;
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(captured);
    size_t length = fread(warning, 1, warning_size - 1, captured);
    warning[length] = '\0';
    fclose(captured);
    return count;
}

int main(void)
{
    lab_startup("client");
    char buffer[64], warning[256];

    int ends[2];
    if (pipe(ends) != 0) {
        perror("pipe");
        return 1;
    }
    stdin_from(ends[0]);
    if (write(ends[1], "typed\n", 6) != 6) {
        perror("write");
        return 1;
    }
    long count = read_keyboard(buffer, sizeof buffer, warning, sizeof warning);
    check(count == 6 && memcmp(buffer, "typed\n", 6) == 0, "the bytes typed are read");
    check(warning[0] == '\0', "reading them warns about nothing");
    close(ends[1]);
    count = read_keyboard(buffer, sizeof buffer, warning, sizeof warning);
    check(count == 0, "at the end of input it returns 0");
    check(warning[0] == '\0', "the end of input is not an error: no warning");

    int directory = open("/", O_RDONLY);
    if (directory < 0) {
        perror("open /");
        return 1;
    }
    stdin_from(directory);
    count = read_keyboard(buffer, sizeof buffer, warning, sizeof warning);
    check(count == -1, "stdin that cannot be read (a directory): -1");
    check(strncmp(warning, "client: read stdin: ", 20) == 0,
          "... and a warning naming the call and stdin");
    printf("(the warning was: %s)\n", warning[0] ? strtok(warning, "\n") : "none");

    printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
