/* event_loop.h - one epoll loop per thread for the HTTP server and client */
#ifndef DIPLOM_EVENT_LOOP_H
#define DIPLOM_EVENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct event_loop;

/* A file descriptor to watch; the caller owns it, the loop calls cb. */
struct loop_watch {
	void (*cb)(void *arg, uint32_t events);
	void *arg;
	int fd;
	bool watched;		/* in the epoll set: the loop keeps this */
};

/* A timer; at_ms < 0 is off. Set at_ms only on the loop's own thread. */
struct loop_timer {
	int64_t at_ms;		/* on clock_now_ms()'s clock */
	void (*cb)(void *arg);
	void *arg;
};

int event_loop_new(struct event_loop **loop, int index, char **cause);
int event_loop_start(struct event_loop *loop, const char *name);
/* Ask the loop to stop and wait for its thread. */
void event_loop_stop(struct event_loop *loop);
void event_loop_free(struct event_loop *loop);

/*
 * Liveness, for a watchdog: ping wakes the loop, which answers once it
 * went round; answered says whether it answered the last ping.
 */
void event_loop_ping(struct event_loop *loop);
bool event_loop_answered(struct event_loop *loop);

/* The loop running on the calling thread, or NULL. */
struct event_loop *event_loop_current(void);
int event_loop_index(const struct event_loop *loop);

/* Watch w->fd for events (EPOLLIN, EPOLLOUT), or change what is watched. */
int event_loop_watch(struct event_loop *loop, struct loop_watch *w,
    uint32_t events);
void event_loop_unwatch(struct event_loop *loop, struct loop_watch *w);
/* Register a timer for the loop's life; then arm it through at_ms. */
int event_loop_add_timer(struct event_loop *loop, struct loop_timer *t);

/* Wake whoever watches the eventfd fd; from any thread. */
void eventfd_poke(int fd);
/* Reset the eventfd fd after it woke its watcher. */
void eventfd_clear(int fd);

/* The most loops (threads) one server runs. */
#define EVENT_LOOP_MAX 16

#endif
