/* duration.h - durations as people write them, for diplomd and the loadgen */
#ifndef DIPLOM_DURATION_H
#define DIPLOM_DURATION_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A number with an optional unit ms, s, m or h (bare: s) into *ms. */
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
	if (errno != 0 || end == s || !(v >= 0 && v <= 1e12))	/* NaN too */
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			*ms = (int64_t)(v * (double)units[i].ms + 0.5);
			return 0;
		}
	}
	return -1;
}

#endif
