/* log.h - one line per event on stderr, with a level */
#ifndef DIPLOM_LOG_H
#define DIPLOM_LOG_H

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

void log_init(const char *tag, enum log_level level);
void log_set_level(enum log_level level);
int log_level_parse(const char *s, enum log_level *level);
const char *log_level_name(enum log_level level);
int log_enabled(enum log_level level);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
