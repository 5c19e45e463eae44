/*
 * thread.c - one way to start a thread and lock a mutex on POSIX and Windows (lesson 06).
 */
#include "lab.h"

#include <stdlib.h>
#ifdef _WIN32
#include <process.h>
#endif

/* The body and its argument travel to the new thread in one heap block it frees. */
struct thread_start {
    void (*body)(void *);
    void *argument;
};

#ifdef _WIN32
static unsigned __stdcall run_thread(void *raw)
#else
static void *run_thread(void *raw)
#endif
{
    struct thread_start start = *(struct thread_start *)raw;
    free(raw);
    start.body(start.argument);
    return 0;
}

int lab_thread_start(void (*body)(void *), void *argument)
{
    struct thread_start *start = malloc(sizeof *start);
    if (start == NULL) {
        return -1;
    }
    start->body = body;
    start->argument = argument;
#ifdef _WIN32
    /* _beginthreadex, not CreateThread: it sets up the C runtime for the new thread. */
    uintptr_t handle = _beginthreadex(NULL, 0, run_thread, start, 0, NULL);
    if (handle == 0) {
        free(start);
        return -1;
    }
    CloseHandle((HANDLE)handle); /* detached: nobody will wait for it */
#else
    pthread_t thread;
    if (pthread_create(&thread, NULL, run_thread, start) != 0) {
        free(start);
        return -1;
    }
    pthread_detach(thread); /* detached: its resources go back when it returns */
#endif
    return 0;
}

void lab_mutex_init(lab_mutex *mutex)
{
#ifdef _WIN32
    InitializeCriticalSection(mutex);
#else
    pthread_mutex_init(mutex, NULL);
#endif
}

void lab_mutex_lock(lab_mutex *mutex)
{
#ifdef _WIN32
    EnterCriticalSection(mutex);
#else
    pthread_mutex_lock(mutex);
#endif
}

void lab_mutex_unlock(lab_mutex *mutex)
{
#ifdef _WIN32
    LeaveCriticalSection(mutex);
#else
    pthread_mutex_unlock(mutex);
#endif
}
