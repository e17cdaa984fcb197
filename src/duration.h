/* duration.h - durations as people write them, for diplomd and the loadgen */
#ifndef DIPLOM_DURATION_H
#define DIPLOM_DURATION_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * The longest duration, 100 years: callers turn durations into nanoseconds
 * and add them to a clock, which must not overflow int64_t.
 */
#define DURATION_MAX_MS INT64_C(3155760000000)

/*
 * A number with an optional unit ms, s, m or h (bare: s) into *ms, at most
 * DURATION_MAX_MS.
 */
static inline int
duration_parse_ms(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = { { "", 1000 }, { "ms", 1 }, { "s", 1000 },
		      { "m", 60000 }, { "h", 3600000 } };
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || !(v >= 0))	/* NaN too */
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			v = v * (double)units[i].ms + 0.5;
			if (v >= (double)DURATION_MAX_MS + 1)
				return -1;
			*ms = (int64_t)v;
			return 0;
		}
	}
	return -1;
}

#endif
