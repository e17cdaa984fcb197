/* fuzz.h - what every fuzz target shares with the replay driver */
#ifndef DIPLOM_FUZZ_H
#define DIPLOM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property failed: say which, then abort so the fuzzer keeps the input. */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

/* A message and its re-decoded encoding carry the same fields. */
#define FUZZ_CHECK_SAME_MESSAGE(m, m2) do {				\
	FUZZ_CHECK(fuzz_str_eq((m)->id, (m2)->id));			\
	FUZZ_CHECK(fuzz_str_eq((m)->source, (m2)->source));		\
	FUZZ_CHECK((m)->timestamp == (m2)->timestamp);			\
	FUZZ_CHECK((m)->payload_len == (m2)->payload_len);		\
	FUZZ_CHECK((m)->payload_len == 0 ||				\
	    memcmp((m)->payload, (m2)->payload, (m)->payload_len) == 0);	\
	FUZZ_CHECK((m2)->n_metadata <= (m)->n_metadata);		\
} while (0)

/* Two strings, either of which may be NULL, are the same. */
static inline int
fuzz_str_eq(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

#endif
