/* ctl/defaults.h - the package's default file: KEY=value lines */
#ifndef DIPLOM_CTL_DEFAULTS_H
#define DIPLOM_CTL_DEFAULTS_H

#include <stddef.h>

/*
 * The assignments of a file such as /etc/default/diplom, as systemd's
 * EnvironmentFile= reads it: one KEY=value a line, blanks around both
 * ignored, a value in single or double quotes taken without them, lines
 * starting with '#' or ';' comments, anything else ignored.
 */
struct ctl_defaults {
	char **keys;
	char **values;
	size_t n;
};

/* Parse text; fails only when memory runs out. */
int ctl_defaults_parse(struct ctl_defaults *d, const char *text, size_t len);
/* Read and parse path: -ENOENT when it does not exist, -errno otherwise. */
int ctl_defaults_read(struct ctl_defaults *d, const char *path,
    char **cause);
/* The value of key (its last assignment), NULL when it has none. */
const char *ctl_defaults_get(const struct ctl_defaults *d, const char *key);
void ctl_defaults_free(struct ctl_defaults *d);

/*
 * text with key set to value, every other line as it was: each line
 * assigning key is replaced; without one, the assignment goes below the
 * first commented-out one ("#KEY=..."), or else at the end. Malloc'd.
 */
char *ctl_defaults_set_text(const char *text, size_t len, const char *key,
    const char *value);
/*
 * Set key to value in the file path, which is replaced at once (a new
 * file of the same mode and owner, renamed over it): a reader sees the
 * old file or the new one, never half of it.
 */
int ctl_defaults_write(const char *path, const char *key, const char *value,
    char **cause);

#endif
