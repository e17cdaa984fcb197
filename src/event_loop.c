/* event_loop.c - epoll, a wakeup eventfd and a few timers on one thread */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "clock.h"
#include "event_loop.h"
#include "xmalloc.h"

#define MAX_TIMERS 8
#define MAX_EVENTS 64

struct event_loop {
	int index;
	int epfd;
	struct loop_watch wake;		/* eventfd: stop */
	atomic_bool stopping;
	/* liveness: a ping the loop answers by copying it to pong */
	atomic_uint ping, pong;
	pthread_t thread;
	bool running;
	char name[16];
	/* owned by the loop thread once it runs */
	struct loop_timer *timers[MAX_TIMERS];
	int ntimers;
	/*
	 * The batch epoll_wait returned, and the next event in it to run:
	 * a callback may unwatch (and free) a watcher whose event is still
	 * waiting further on, so unwatch strikes that event out.
	 */
	struct epoll_event evs[MAX_EVENTS];
	int nevs, next_ev;
};

static _Thread_local struct event_loop *current_loop;

struct event_loop *
event_loop_current(void)
{
	return current_loop;
}

int
event_loop_index(const struct event_loop *loop)
{
	return loop->index;
}

void
eventfd_poke(int fd)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is already set, the watcher wakes anyway */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort();
}

void
eventfd_clear(int fd)
{
	uint64_t junk;

	if (read(fd, &junk, sizeof(junk)) < 0)
		junk = 0;
}

static void
on_wake(void *arg, uint32_t events)
{
	struct event_loop *loop = arg;

	(void)events;
	eventfd_clear(loop->wake.fd);
}

int
event_loop_new(struct event_loop **out, int index, char **cause)
{
	struct event_loop *loop = xcalloc(1, sizeof(*loop));

	*out = NULL;
	loop->index = index;
	loop->wake = (struct loop_watch){ .cb = on_wake, .arg = loop, .fd = -1 };
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->epfd < 0 || loop->wake.fd < 0 ||
	    event_loop_watch(loop, &loop->wake, EPOLLIN) != 0) {
		if (asprintf(cause, "cannot set up an event loop: %s",
		    strerror(errno)) < 0)
			*cause = NULL;
		event_loop_free(loop);
		return -EMFILE;
	}
	*out = loop;
	return 0;
}

int
event_loop_watch(struct event_loop *loop, struct loop_watch *w,
    uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (epoll_ctl(loop->epfd, w->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	    w->fd, &ev) != 0)
		return -errno;
	w->watched = true;
	return 0;
}

void
event_loop_unwatch(struct event_loop *loop, struct loop_watch *w)
{
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->watched = false;
	for (int i = loop->next_ev; i < loop->nevs; i++) {
		if (loop->evs[i].data.ptr == w)
			loop->evs[i].data.ptr = NULL;
	}
}

int
event_loop_add_timer(struct event_loop *loop, struct loop_timer *t)
{
	if (loop->ntimers == MAX_TIMERS)
		return -ENOSPC;
	loop->timers[loop->ntimers++] = t;
	return 0;
}

/* Milliseconds until the next timer, -1 when none is armed. */
static int
next_timeout(struct event_loop *loop, int64_t now)
{
	int64_t next = -1;

	for (int i = 0; i < loop->ntimers; i++) {
		int64_t at = loop->timers[i]->at_ms;

		if (at >= 0 && (next < 0 || at < next))
			next = at;
	}
	if (next < 0)
		return -1;
	return next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
}

static void
run_timers(struct event_loop *loop, int64_t now)
{
	for (int i = 0; i < loop->ntimers; i++) {
		struct loop_timer *t = loop->timers[i];

		if (t->at_ms >= 0 && t->at_ms <= now) {
			t->at_ms = -1;
			t->cb(t->arg);
		}
	}
}

static void *
loop_main(void *arg)
{
	struct event_loop *loop = arg;
	int n;

	current_loop = loop;
	pthread_setname_np(pthread_self(), loop->name);
	while (!atomic_load(&loop->stopping)) {
		n = epoll_wait(loop->epfd, loop->evs, MAX_EVENTS,
		    next_timeout(loop, clock_now_ms()));
		loop->nevs = n > 0 ? n : 0;
		for (loop->next_ev = 0; loop->next_ev < loop->nevs;) {
			struct epoll_event *ev = &loop->evs[loop->next_ev++];
			struct loop_watch *w = ev->data.ptr;

			/* NULL: unwatched by an earlier callback of this batch */
			if (w != NULL)
				w->cb(w->arg, ev->events);
		}
		loop->nevs = 0;
		run_timers(loop, clock_now_ms());
		atomic_store(&loop->pong, atomic_load(&loop->ping));
	}
	return NULL;
}

int
event_loop_start(struct event_loop *loop, const char *name)
{
	snprintf(loop->name, sizeof(loop->name), "%s", name);
	if (pthread_create(&loop->thread, NULL, loop_main, loop) != 0)
		return -EAGAIN;
	loop->running = true;
	return 0;
}

void
event_loop_ping(struct event_loop *loop)
{
	atomic_fetch_add(&loop->ping, 1);
	eventfd_poke(loop->wake.fd);
}

bool
event_loop_answered(struct event_loop *loop)
{
	return atomic_load(&loop->pong) == atomic_load(&loop->ping);
}

void
event_loop_stop(struct event_loop *loop)
{
	if (loop == NULL || !loop->running)
		return;
	atomic_store(&loop->stopping, true);
	eventfd_poke(loop->wake.fd);
	pthread_join(loop->thread, NULL);
	loop->running = false;
}

void
event_loop_free(struct event_loop *loop)
{
	if (loop == NULL)
		return;
	event_loop_stop(loop);
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->wake.fd >= 0)
		close(loop->wake.fd);
	free(loop);
}
