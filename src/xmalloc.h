/* xmalloc.h - the daemon's one out-of-memory policy */
#ifndef DIPLOM_XMALLOC_H
#define DIPLOM_XMALLOC_H

#include <stddef.h>

/*
 * Memory the daemon needs to keep its books (deliveries, results, replies,
 * reasons) comes from these: when it cannot be had, the process logs and
 * aborts rather than go on with a hole in its books. That loses nothing
 * accepted: a message is acknowledged only after its result is committed,
 * so the backend delivers again whatever was in flight. What a client
 * sizes (a request body, a decoded payload) is bounded before it is
 * allocated, and a failure there is answered, not fatal.
 */
void *xmalloc(size_t size);
/* For what a library failed to allocate (open_memstream, json-c). */
void xalloc_failed(void) __attribute__((noreturn));
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* asprintf that returns the length and never fails. */
int xasprintf(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
