/*
 * replay.c - run a fuzz target's entry function on files, without libFuzzer.
 * Arguments are files or directories (every regular file in them). stdout is
 * pointed at stderr while a target runs, so nothing it prints is mistaken
 * for the summary. Exits non-zero when an input crashes.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "fuzz.h"

/* Let a target leave LLVMFuzzerInitialize out. */
#pragma weak LLVMFuzzerInitialize

/* Read path whole into a buffer of exactly its size. */
static int
read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL, *b;
	size_t n = 0, cap = 0, got;

	if (f == NULL)
		return -errno;
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			if ((b = realloc(buf, cap)) == NULL) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = b;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	/* exactly n bytes, so reading past the input is caught under ASan */
	if ((b = malloc(n ? n : 1)) == NULL) {
		free(buf);
		return -ENOMEM;
	}
	memcpy(b, buf, n);
	free(buf);
	*out = b;
	*len = n;
	return 0;
}

static int
replay_file(const char *path, int *count)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	if ((rc = read_file(path, &data, &len)) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(-rc));
		return rc;
	}
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	(*count)++;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file in dir, in name order. */
static int
replay_dir(const char *dir, int *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, **nn, *path;
	size_t n = 0;
	int rc = 0;
	struct stat st;

	if (d == NULL) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if ((nn = realloc(names, (n + 1) * sizeof(*names))) == NULL ||
		    (nn[n] = strdup(e->d_name)) == NULL) {
			rc = -ENOMEM;
			if (nn != NULL)
				names = nn;
			goto out;
		}
		names = nn;
		n++;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
			rc = -ENOMEM;
			break;
		}
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			rc = replay_file(path, count);
		free(path);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int
main(int argc, char **argv)
{
	struct stat st;
	int out, count = 0, rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	if ((out = dup(STDOUT_FILENO)) < 0 ||
	    dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
		perror("replay: dup");
		return 2;
	}
	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc && rc == 0; i++) {
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
			    strerror(errno));
			rc = -errno;
		} else if (S_ISDIR(st.st_mode)) {
			rc = replay_dir(argv[i], &count);
		} else {
			rc = replay_file(argv[i], &count);
		}
	}
	fflush(stdout);
	dup2(out, STDOUT_FILENO);
	close(out);
	printf("%d inputs replayed\n", count);
	return rc == 0 ? 0 : 1;
}
