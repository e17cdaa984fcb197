/* queue.c - backend lookup by name */
#include <string.h>

#include "queue.h"

static const struct queue_ops *const backends[] = {
	&queue_memory_ops,
	&queue_nats_ops,
};

const struct queue_ops *
queue_ops_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(*backends); i++) {
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	}
	return NULL;
}
