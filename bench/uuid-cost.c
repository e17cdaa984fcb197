/*
 * uuid-cost.c - what one message id costs here: a system call, libuuid's
 * random (v4) id that ingest gives every message, and its name-based (v5)
 * id that a keyed message gets. Prints microseconds per call.
 *
 *   cc -O2 -o uuid-cost bench/uuid-cost.c -luuid && ./uuid-cost
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <uuid/uuid.h>

#define N 200000

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int
main(void)
{
	static const uuid_t ns = { 0x6b, 0x1f };
	uuid_t u;
	double t, sys, v4, v5;

	t = now();
	for (int i = 0; i < N; i++)
		syscall(SYS_getppid);
	sys = now() - t;
	t = now();
	for (int i = 0; i < N; i++)
		uuid_generate_random(u);
	v4 = now() - t;
	t = now();
	for (int i = 0; i < N; i++)
		uuid_generate_sha1(u, ns, (const char *)&i, sizeof(i));
	v5 = now() - t;
	printf("system call %.2f us, libuuid v4 %.2f us, libuuid v5 %.2f us\n",
	    sys / N * 1e6, v4 / N * 1e6, v5 / N * 1e6);
	return 0;
}
