/* log.c - leveled logging to stderr, journald-aware, text or JSON */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "log.h"

static const char *log_tag = "diplomd";
static enum log_level log_max = LOG_LEVEL_INFO;
/* Under systemd, stderr is the journal: a "<N>" prefix sets the priority and
 * the journal adds its own timestamp. Elsewhere a timestamp helps. */
static int log_to_journal;

static enum log_format log_fmt = LOG_FORMAT_TEXT;

/* A call site of warnings or errors, known by its format. */
struct burst {
	const char *fmt;
	time_t window;		/* start of the current window */
	unsigned lines;		/* let through in it */
	unsigned suppressed;	/* since the last line let through */
};

#define N_BURSTS 64
static struct burst bursts[N_BURSTS];
static unsigned burst_max = LOG_BURST;
static int burst_window = LOG_BURST_WINDOW_S;
static pthread_mutex_t bursts_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int level_syslog[] = { 3, 4, 6, 7 };

void
log_init(const char *tag, enum log_level level)
{
	log_tag = tag;
	log_max = level;
	log_to_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_set_format(enum log_format format)
{
	log_fmt = format;
}

void
log_set_burst(unsigned burst, int window_s)
{
	pthread_mutex_lock(&bursts_lock);
	burst_max = burst;
	burst_window = window_s;
	memset(bursts, 0, sizeof(bursts));
	pthread_mutex_unlock(&bursts_lock);
}

int
log_format_parse(const char *s, enum log_format *format)
{
	if (strcasecmp(s, "text") == 0)
		*format = LOG_FORMAT_TEXT;
	else if (strcasecmp(s, "json") == 0)
		*format = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
}

void
log_set_level(enum log_level level)
{
	log_max = level;
}

int
log_enabled(enum log_level level)
{
	return level <= log_max;
}

int
log_level_parse(const char *s, enum log_level *level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(*level_names); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*level = LOG_LEVEL_WARN;
		return 0;
	}
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	return level_names[level];
}

/*
 * Whether a warning or an error from fmt may be written now; if so, how
 * many from it were suppressed before it. A broker that stays down or a
 * full disk must not fill the journal.
 */
static bool
burst_allows(const char *fmt, unsigned *suppressed)
{
	time_t now = time(NULL);
	struct burst *b = NULL;
	bool ok;

	*suppressed = 0;
	pthread_mutex_lock(&bursts_lock);
	for (size_t i = 0; i < N_BURSTS; i++) {
		if (bursts[i].fmt == fmt || bursts[i].fmt == NULL) {
			b = &bursts[i];
			break;
		}
	}
	if (b == NULL) {
		/* more call sites than slots: let them all through */
		pthread_mutex_unlock(&bursts_lock);
		return true;
	}
	if (b->fmt == NULL || now - b->window >= burst_window) {
		b->fmt = fmt;
		b->window = now;
		b->lines = 0;
	}
	ok = b->lines < burst_max;
	if (ok) {
		b->lines++;
		*suppressed = b->suppressed;
		b->suppressed = 0;
	} else {
		b->suppressed++;
	}
	pthread_mutex_unlock(&bursts_lock);
	return ok;
}

static void
emit_json(enum log_level level, const char *id, const char *msg,
    const char *stamp)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return;
	json_object_object_add(o, "time", json_object_new_string(stamp));
	json_object_object_add(o, "level",
	    json_object_new_string(level_names[level]));
	json_object_object_add(o, "role", json_object_new_string(log_tag));
	if (id != NULL)
		json_object_object_add(o, "message_id",
		    json_object_new_string(id));
	json_object_object_add(o, "message", json_object_new_string(msg));
	if (log_to_journal)
		fprintf(stderr, "<%d>%s\n", level_syslog[level],
		    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	else
		fprintf(stderr, "%s\n",
		    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/*
 * src into dst (of size bytes, at least 5) as one line of text: control
 * characters (ANSI escapes among them) and the backslash are written as C
 * escapes, so that what a client sent (a message id, a header) cannot end
 * the line, forge another or drive the terminal. Cut short to fit.
 */
static const char *
escape_text(char *dst, size_t size, const char *src)
{
	size_t o = 0;

	for (; *src != '\0' && o + 5 <= size; src++) {
		unsigned char c = (unsigned char)*src;
		const char *e = c == '\n' ? "\\n" : c == '\r' ? "\\r" :
		    c == '\t' ? "\\t" : c == '\\' ? "\\\\" : NULL;

		if (e != NULL)
			o += (size_t)snprintf(dst + o, size - o, "%s", e);
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(dst + o, size - o, "\\x%02x", c);
		else
			dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return dst;
}

static void
emit_text(enum log_level level, const char *id, const char *msg,
    const char *stamp)
{
	/* every byte may take four */
	char eid[4 * 128 + 1], emsg[4 * 1024 + 1];

	if (id != NULL)
		escape_text(eid, sizeof(eid), id);
	escape_text(emsg, sizeof(emsg), msg);
	if (log_to_journal)
		fprintf(stderr, "<%d>%s: %s%s%s%s\n", level_syslog[level],
		    level_names[level], id != NULL ? "message " : "",
		    id != NULL ? eid : "", id != NULL ? ": " : "", emsg);
	else
		fprintf(stderr, "%s %s %s: %s%s%s%s\n", stamp, log_tag,
		    level_names[level], id != NULL ? "message " : "",
		    id != NULL ? eid : "", id != NULL ? ": " : "", emsg);
}

static void
log_vemit(enum log_level level, const char *id, const char *fmt, va_list ap)
{
	char msg[1024], stamp[64];
	unsigned suppressed = 0;
	struct timespec ts;
	struct tm tm;
	size_t n;

	if (level > log_max)
		return;
	if (level <= LOG_LEVEL_WARN && !burst_allows(fmt, &suppressed))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	if (suppressed > 0 && n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - n, " (%u more like it "
		    "suppressed)", suppressed);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	/* one fprintf per line keeps lines from threads whole */
	if (log_fmt == LOG_FORMAT_JSON)
		emit_json(level, id, msg, stamp);	/* json-c escapes */
	else
		emit_text(level, id, msg, stamp);
}

#define LOG_FN(name, level)				\
	void						\
	name(const char *fmt, ...)			\
	{						\
		va_list ap;				\
		va_start(ap, fmt);			\
		log_vemit(level, NULL, fmt, ap);	\
		va_end(ap);				\
	}

LOG_FN(log_error, LOG_LEVEL_ERROR)
LOG_FN(log_warn, LOG_LEVEL_WARN)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_debug, LOG_LEVEL_DEBUG)

void
log_message(enum log_level level, const char *message_id, const char *fmt,
    ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(level, message_id, fmt, ap);
	va_end(ap);
}
