/* clock.h - monotonic time, and condition variables that wait by it */
#ifndef DIPLOM_CLOCK_H
#define DIPLOM_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

static inline int64_t
clock_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t
clock_now_ms(void)
{
	return clock_now_ns() / 1000000;
}

/* Sleep ms milliseconds. */
static inline void
clock_sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* A condition variable whose timed waits are not moved by clock changes. */
static inline int
clock_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rc;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

/* Wait on cv (made by clock_cond_init) until the monotonic time at_ns. */
static inline int
clock_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t at_ns)
{
	struct timespec ts = { (time_t)(at_ns / 1000000000),
		(long)(at_ns % 1000000000) };

	return pthread_cond_timedwait(cv, mu, &ts);
}

#endif
