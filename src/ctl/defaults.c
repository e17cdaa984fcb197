/* ctl/defaults.c - read and rewrite the package's default file */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "ctl/defaults.h"

/* The key a line assigns, [*kb, *ke), and where its value starts. */
static bool
line_assigns(const char *p, const char *end, const char **kb,
    const char **ke, const char **vb)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || !(isalpha((unsigned char)*p) || *p == '_'))
		return false;
	*kb = p;
	while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
		p++;
	*ke = p;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || *p != '=')
		return false;
	*vb = p + 1;
	return true;
}

/* Whether the line [p, end) is key's assignment commented out. */
static bool
line_comments_out(const char *p, const char *end, const char *key)
{
	const char *kb, *ke, *vb;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || *p != '#')
		return false;
	p++;
	return line_assigns(p, end, &kb, &ke, &vb) &&
	    (size_t)(ke - kb) == strlen(key) && memcmp(kb, key, ke - kb) == 0;
}

/* The value [vb, end) without blanks around it and without its quotes. */
static char *
value_of(const char *vb, const char *end)
{
	char *v, *o;

	while (vb < end && isspace((unsigned char)*vb))
		vb++;
	while (end > vb && isspace((unsigned char)end[-1]))
		end--;
	if (end - vb >= 2 && (*vb == '"' || *vb == '\'') && end[-1] == *vb) {
		char q = *vb++;

		end--;
		if ((v = malloc((size_t)(end - vb) + 1)) == NULL)
			return NULL;
		for (o = v; vb < end; vb++) {
			/* inside double quotes \" and \\ stand for themselves */
			if (q == '"' && *vb == '\\' && vb + 1 < end &&
			    (vb[1] == '"' || vb[1] == '\\'))
				vb++;
			*o++ = *vb;
		}
		*o = '\0';
		return v;
	}
	return strndup(vb, (size_t)(end - vb));
}

int
ctl_defaults_parse(struct ctl_defaults *d, const char *text, size_t len)
{
	const char *p = text, *end = text + len, *nl, *kb, *ke, *vb;

	memset(d, 0, sizeof(*d));
	for (; p < end; p = nl + 1) {
		char **k, **v;

		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (!line_assigns(p, nl, &kb, &ke, &vb))
			continue;
		if ((k = realloc(d->keys, (d->n + 1) * sizeof(*k))) == NULL)
			goto nomem;
		d->keys = k;
		if ((v = realloc(d->values, (d->n + 1) * sizeof(*v))) == NULL)
			goto nomem;
		d->values = v;
		d->keys[d->n] = strndup(kb, (size_t)(ke - kb));
		d->values[d->n] = value_of(vb, nl);
		d->n++;
		if (d->keys[d->n - 1] == NULL || d->values[d->n - 1] == NULL)
			goto nomem;
	}
	return 0;
nomem:
	ctl_defaults_free(d);
	return -ENOMEM;
}

/* The whole of path into *text; 0 or -errno. */
static int
slurp(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "re");
	char buf[4096];
	size_t n;
	FILE *out;
	int rc = 0;

	*text = NULL;
	*len = 0;
	if (f == NULL)
		return -errno;
	if ((out = open_memstream(text, len)) == NULL) {
		rc = -errno;
		fclose(f);
		return rc;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, out);
	if (ferror(f))
		rc = -EIO;
	fclose(f);
	if (fclose(out) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc != 0) {
		free(*text);
		*text = NULL;
	}
	return rc;
}

int
ctl_defaults_read(struct ctl_defaults *d, const char *path, char **cause)
{
	char *text;
	size_t len;
	int rc;

	*cause = NULL;
	memset(d, 0, sizeof(*d));
	if ((rc = slurp(path, &text, &len)) != 0) {
		if (asprintf(cause, "%s: %s", path, strerror(-rc)) < 0)
			*cause = NULL;
		return rc;
	}
	rc = ctl_defaults_parse(d, text, len);
	free(text);
	if (rc != 0 && asprintf(cause, "%s: out of memory", path) < 0)
		*cause = NULL;
	return rc;
}

const char *
ctl_defaults_get(const struct ctl_defaults *d, const char *key)
{
	for (size_t i = d->n; i > 0; i--) {
		if (strcmp(d->keys[i - 1], key) == 0)
			return d->values[i - 1];
	}
	return NULL;
}

void
ctl_defaults_free(struct ctl_defaults *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->keys[i]);
		free(d->values[i]);
	}
	free(d->keys);
	free(d->values);
	memset(d, 0, sizeof(*d));
}

char *
ctl_defaults_set_text(const char *text, size_t len, const char *key,
    const char *value)
{
	const char *p, *end = text + len, *nl, *kb, *ke, *vb;
	const char *commented = NULL;	/* the end of "#KEY=..." */
	bool set = false;
	char *out = NULL;
	size_t olen = 0;
	FILE *f = open_memstream(&out, &olen);

	if (f == NULL)
		return NULL;
	for (p = text; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (line_assigns(p, nl, &kb, &ke, &vb) &&
		    (size_t)(ke - kb) == strlen(key) &&
		    memcmp(kb, key, (size_t)(ke - kb)) == 0) {
			fprintf(f, "%s=%s\n", key, value);
			set = true;
			continue;
		}
		fwrite(p, 1, (size_t)(nl - p), f);
		if (nl < end)
			fputc('\n', f);
		if (commented == NULL && line_comments_out(p, nl, key))
			commented = nl;
	}
	if (fclose(f) != 0)
		return NULL;
	if (set)
		return out;
	/* none: below the commented-out default, or at the end */
	free(out);
	out = NULL;
	if ((f = open_memstream(&out, &olen)) == NULL)
		return NULL;
	if (commented != NULL) {
		fwrite(text, 1, (size_t)(commented - text), f);
		fprintf(f, "\n%s=%s", key, value);
		fwrite(commented, 1, (size_t)(end - commented), f);
	} else {
		fwrite(text, 1, len, f);
		fprintf(f, "%s%s=%s\n", len > 0 && text[len - 1] != '\n' ?
		    "\n" : "", key, value);
	}
	if (fclose(f) != 0)
		return NULL;
	return out;
}

int
ctl_defaults_write(const char *path, const char *key, const char *value,
    char **cause)
{
	char *text = NULL, *next = NULL, *tmp = NULL, *dir = NULL;
	struct stat st;
	size_t len;
	int fd = -1, dfd = -1, rc;

	*cause = NULL;
	if ((rc = slurp(path, &text, &len)) != 0 ||
	    stat(path, &st) != 0) {
		rc = rc != 0 ? rc : -errno;
		goto out;
	}
	if ((next = ctl_defaults_set_text(text, len, key, value)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
		tmp = NULL;
		rc = -ENOMEM;
		goto out;
	}
	if ((fd = mkstemp(tmp)) < 0) {
		free(tmp);
		tmp = NULL;
		rc = -errno;
		goto out;
	}
	/*
	 * A conffile keeps its owner and mode: a file that cannot have them
	 * is not put in its place.
	 */
	errno = EIO;
	if (fchown(fd, st.st_uid, st.st_gid) != 0 ||
	    fchmod(fd, st.st_mode & 07777) != 0 ||
	    write(fd, next, strlen(next)) != (ssize_t)strlen(next) ||
	    fsync(fd) != 0) {
		rc = -errno;
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = -errno;
		goto out;
	}
	free(tmp);
	tmp = NULL;
	/* the rename itself survives a crash once the directory is synced */
	if ((dir = strdup(path)) != NULL &&
	    (dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL)
		unlink(tmp);
	if (rc != 0 && asprintf(cause, "cannot rewrite %s: %s", path,
	    strerror(-rc == 0 ? EIO : -rc)) < 0)
		*cause = NULL;
	free(dir);
	free(next);
	free(text);
	return rc;
}
