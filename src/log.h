/*
 * log.h - one-line diagnostics on stderr.
 *
 * Every binary speaks through these so that messages have one shape,
 * "iotlat-<program>: <level>: <text>", which is what a user greps in
 * Kubernetes logs.  Nothing here is on the per-message path.
 */
#ifndef IL_LOG_H
#define IL_LOG_H

#include <stdarg.h>

#define IL_LOG_ERROR 0
#define IL_LOG_WARN 1
#define IL_LOG_INFO 2
#define IL_LOG_DEBUG 3

/* Name printed before every line (the program name); not copied. */
void il_log_set_program(const char *name);
/* Lines above this level are dropped (default IL_LOG_INFO). */
void il_log_set_level(int level);
int il_log_get_level(void);

void il_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void il_vlog(int level, const char *prefix, const char *fmt, va_list ap);

#endif
