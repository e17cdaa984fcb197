/* loadgen/args.c - what diplom-loadgen sends: options, body, retry pacing */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "loadgen/args.h"

enum {
	OPT_URL = 1000,
	OPT_DURATION,
	OPT_RATE,
	OPT_SIZE,
	OPT_RETRY,
	OPT_RECORD,
	OPT_LABEL,
	OPT_JSON,
	OPT_IDEMPOTENCY,
	OPT_NO_IDEMPOTENCY,
	OPT_BATCH,
};

static const struct option longopts[] = {
	{ "url", required_argument, NULL, OPT_URL },
	{ "count", required_argument, NULL, 'n' },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "connections", required_argument, NULL, 'c' },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "retry", required_argument, NULL, OPT_RETRY },
	{ "record", required_argument, NULL, OPT_RECORD },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "idempotency", no_argument, NULL, OPT_IDEMPOTENCY },
	{ "no-idempotency", no_argument, NULL, OPT_NO_IDEMPOTENCY },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* A whole number in [min, max], nothing else on the line. */
static int
parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Set *cause to a usage error naming the option as the user wrote it. */
static enum lg_parse_result
usage_error(char **cause, const char *opt, const char *val, const char *why)
{
	int n;

	if (val != NULL)
		n = asprintf(cause, "invalid value '%s' for %s: %s", val, opt,
		    why);
	else
		n = asprintf(cause, "%s", why);
	if (n < 0)
		*cause = NULL;
	return LG_EXIT_USAGE;
}

enum lg_parse_result
lg_opts_parse(struct lg_opts *o, int argc, char **argv, FILE *out,
    char **cause)
{
	char what[64];
	int64_t v;
	int c, idx, have_count = 0, have_url = 0;
	char *end;

	*cause = NULL;
	memset(o, 0, sizeof(*o));
	o->idempotency = -1;
	o->url = LG_DEFAULT_URL;
	o->connections = LG_DEFAULT_CONNECTIONS;
	o->size = LG_DEFAULT_SIZE;
	o->label = "";

	optind = 0;	/* reset getopt, so tests may parse twice */
	opterr = 0;
	for (;;) {
		idx = -1;
		c = getopt_long(argc, argv, ":n:c:hV", longopts, &idx);
		if (c == -1) {
			break;
		}
		/* name the option as it was written: -c or --connections */
		if (idx >= 0) {
			snprintf(what, sizeof(what), "--%s",
			    longopts[idx].name);
		} else {
			snprintf(what, sizeof(what), "-%c", c);
		}
		switch (c) {
		case 'h':
			lg_print_help(out, argv[0]);
			return LG_EXIT_OK;
		case 'V':
			fprintf(out, "diplom-loadgen %s\n", PACKAGE_VERSION);
			return LG_EXIT_OK;
		case OPT_URL:
			if (strncmp(optarg, "http://", 7) != 0 &&
			    strncmp(optarg, "https://", 8) != 0)
				return usage_error(cause, what, optarg,
				    "expected an http:// or https:// URL");
			o->url = optarg;
			have_url = 1;
			break;
		case 'n':
			if (parse_int(optarg, 1, INT64_MAX, &v) != 0)
				return usage_error(cause, what, optarg,
				    "expected a whole number of messages >= 1");
			o->count = v;
			have_count = 1;
			break;
		case OPT_DURATION:
			if (duration_parse_ms(optarg, &v) != 0 || v <= 0)
				return usage_error(cause, what, optarg,
				    "expected seconds > 0 (or 500ms, 2m, 1h)");
			o->duration_ms = v;
			break;
		case 'c':
			if (parse_int(optarg, 1, LG_MAX_CONNECTIONS, &v) != 0)
				return usage_error(cause, what, optarg,
				    "expected a whole number 1-10000");
			o->connections = (int)v;
			break;
		case OPT_RATE:
			errno = 0;
			o->rate = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    !(o->rate > 0 && o->rate <= 1e9))	/* NaN too */
				return usage_error(cause, what, optarg,
				    "expected messages per second > 0");
			break;
		case OPT_SIZE:
			if (parse_int(optarg, 0, LG_MAX_SIZE, &v) != 0)
				return usage_error(cause, what, optarg,
				    "expected a number of bytes 0-67108864");
			o->size = v;
			break;
		case OPT_RETRY:
			if (parse_int(optarg, 0, 1000000, &v) != 0)
				return usage_error(cause, what, optarg,
				    "expected a whole number of retries >= 0");
			o->retry = (int)v;
			break;
		case OPT_RECORD:
			if (*optarg == '\0')
				return usage_error(cause, what, optarg,
				    "expected a database path");
			o->record = optarg;
			break;
		case OPT_LABEL:
			o->label = optarg;
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_IDEMPOTENCY:
			o->idempotency = 1;
			break;
		case OPT_NO_IDEMPOTENCY:
			o->idempotency = 0;
			break;
		case OPT_BATCH:
			if (parse_int(optarg, 1, LG_MAX_BATCH, &v) != 0)
				return usage_error(cause, what, optarg,
				    "expected a whole number of messages "
				    "1-1000000");
			o->batch = (int)v;
			break;
		case ':':
			if (asprintf(cause, "option '%s' requires an argument",
			    argv[optind - 1]) < 0)
				*cause = NULL;
			return LG_EXIT_USAGE;
		default:
			if (asprintf(cause, "unrecognized option '%s'",
			    argv[optind - 1]) < 0)
				*cause = NULL;
			return LG_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		if (asprintf(cause, "unexpected argument '%s'",
		    argv[optind]) < 0)
			*cause = NULL;
		return LG_EXIT_USAGE;
	}
	if (have_count && o->duration_ms > 0)
		return usage_error(cause, NULL, NULL,
		    "-n/--count and --duration exclude each other");
	if (!have_count && o->duration_ms == 0)
		o->count = LG_DEFAULT_COUNT;
	if (o->idempotency < 0)
		o->idempotency = o->retry > 0;
	if (o->batch > 0 && !have_url)
		o->url = LG_DEFAULT_BATCH_URL;
	return LG_RUN;
}

void
lg_print_help(FILE *out, const char *prog)
{
	fprintf(out,
	    "Usage: %s [OPTION]...\n"
	    "Post messages to a diplom gateway, measure the answers and "
	    "print a summary.\n\n"
	    "  --url=URL            where to post (default %s)\n"
	    "  -n, --count=COUNT    send COUNT messages (default %d)\n"
	    "  --duration=SEC       send for SEC seconds instead of -n\n"
	    "  -c, --connections=N  requests in flight (default %d)\n"
	    "  --rate=PER_SEC       pace sends evenly at PER_SEC in total\n"
	    "  --size=BYTES         bytes of each message's data "
	    "(default %d)\n"
	    "  --retry=N            retry a 503 or a failed connection up to "
	    "N times\n"
	    "  --record=DB          store accepted ids in the SQLite table "
	    "sent\n"
	    "  --label=TEXT         label column of the recorded rows\n"
	    "  --json               print the summary as one JSON object\n"
	    "  --idempotency        send an Idempotency-Key with each message, "
	    "the same\n"
	    "                       on its retries (default with --retry)\n"
	    "  --no-idempotency     send no Idempotency-Key\n"
	    "  --batch=N            post N messages a request to a batch "
	    "endpoint\n"
	    "                       (default URL then %s)\n"
	    "  -h, --help           show this help and exit\n"
	    "  -V, --version        show the version and exit\n\n"
	    "Exit status: 0 when the run completed (rejections included), "
	    "1 on a runtime\nfailure, 2 on a usage error. "
	    "See diplom-loadgen(1).\n",
	    prog, LG_DEFAULT_URL, LG_DEFAULT_COUNT, LG_DEFAULT_CONNECTIONS,
	    LG_DEFAULT_SIZE, LG_DEFAULT_BATCH_URL);
}

char *
lg_body_prefix(int64_t size, size_t *len)
{
	/* printable and free of '"' and '\\', so valid JSON string content */
	static const char alphabet[] =
	    "abcdefghijklmnopqrstuvwxyz0123456789";
	static const char head[] = "{\"source\":\"loadgen\",\"data\":\"";
	static const char tail[] = "\",\"metadata\":{\"seq\":\"";
	size_t n = (size_t)size, hl = sizeof(head) - 1, tl = sizeof(tail) - 1;
	char *p;

	if ((p = malloc(hl + n + tl + 1)) == NULL)
		return NULL;
	memcpy(p, head, hl);
	for (size_t i = 0; i < n; i++)
		p[hl + i] = alphabet[i % (sizeof(alphabet) - 1)];
	memcpy(p + hl + n, tail, tl + 1);
	*len = hl + n + tl;
	return p;
}

size_t
lg_body_finish(char *buf, size_t prefix_len, uint64_t seq)
{
	int n = snprintf(buf + prefix_len, LG_BODY_TAIL, "%" PRIu64 "\"}}",
	    seq);

	return prefix_len + (size_t)n;
}

size_t
lg_batch_finish(char *buf, const char *prefix, size_t prefix_len,
    uint64_t seq, int n, const char *tag)
{
	size_t len = 1, item;

	buf[0] = '[';
	for (int i = 0; i < n; i++) {
		if (i > 0)
			buf[len++] = ',';
		memcpy(buf + len, prefix, prefix_len);
		item = lg_body_finish(buf + len, prefix_len, seq + (uint64_t)i);
		/* the key goes inside the item's closing brace */
		if (tag != NULL)
			item = item - 1 + (size_t)snprintf(buf + len + item - 1,
			    LG_ITEM_ROOM(prefix_len) - item + 1,
			    ",\"idempotency_key\":\"lg-%s-%" PRIu64 "\"}", tag,
			    seq + (uint64_t)i);
		len += item;
	}
	buf[len++] = ']';
	buf[len] = '\0';
	return len;
}

unsigned
lg_backoff_ms(unsigned attempt, uint32_t rnd)
{
	unsigned base = 1000;

	if (attempt < 1)
		attempt = 1;
	if (attempt <= 5)	/* 50 << 5 is past the cap already */
		base = 50u << (attempt - 1);
	if (base > 1000)
		base = 1000;
	return base / 2 + rnd % (base / 2 + 1);
}
