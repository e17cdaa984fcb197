/* log.h - one line per event on stderr, with a level */
#ifndef DIPLOM_LOG_H
#define DIPLOM_LOG_H

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_format {
	LOG_FORMAT_TEXT,
	LOG_FORMAT_JSON,	/* one JSON object a line */
};

void log_init(const char *tag, enum log_level level);
void log_set_format(enum log_format format);
int log_format_parse(const char *s, enum log_format *format);
void log_set_level(enum log_level level);
int log_level_parse(const char *s, enum log_level *level);
const char *log_level_name(enum log_level level);
int log_enabled(enum log_level level);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One line about one message: its id is a field of its own in JSON. */
void log_message(enum log_level level, const char *message_id,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Warnings and errors from one call site (one format) beyond LOG_BURST in
 * LOG_BURST_WINDOW_S seconds are suppressed; the next line let through
 * says how many were.
 */
#define LOG_BURST 5
#define LOG_BURST_WINDOW_S 60
/* Another burst and window (seconds), for tests. */
void log_set_burst(unsigned burst, int window_s);

#endif
